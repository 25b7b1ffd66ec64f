import json, os, subprocess, tempfile, shutil, sys, random
HERE=os.path.dirname(os.path.abspath(__file__))
C=os.path.join(HERE,'../../tests/corpus')
BIN=os.environ.get('KITCHEN_DRIVER_BIN', os.path.join(HERE,'../../../target/debug/kitchen-driver'))
def both(d, env):
    tk=subprocess.run(['ruby',os.path.join(HERE,'tk_diag.rb')],cwd=d,env=env,capture_output=True,text=True)
    tkj=json.loads(tk.stdout) if tk.stdout.strip() else {'error':'no output '+tk.stderr[:300]}
    kd=subprocess.run([BIN,'diagnose','--json'],cwd=d,env=env,capture_output=True,text=True)
    if kd.returncode!=0:
        kdj={'error':kd.stderr.strip()[:300]}
    else:
        j=json.loads(kd.stdout)
        kdj={'order':list(j['instances'].keys()),'instances':{k:{b:v[b] for b in ['driver','provisioner','verifier','transport','lifecycle']} for k,v in j['instances'].items()}}
    return tkj,kdj
def compare(label,tkj,kdj, quiet_err=False):
    if 'error' in kdj and 'No instances' in kdj['error'] and tkj.get('order')==[]:
        return True
    if 'error' in tkj or 'error' in kdj:
        if 'error' in tkj and 'error' in kdj:
            return True
        print('ERRDIFF',label,'\n  tk:',tkj.get('error','ok'),'\n  kd:',kdj.get('error','ok')); return False
    if tkj['order']!=kdj['order'] and list(dict.fromkeys(tkj['order']))!=kdj['order']:
        print('ORDER',label,tkj['order'][:5],kdj['order'][:5]); return False
    ok=True
    for k,v in tkj['instances'].items():
        for b in v:
            a=json.dumps(v[b]); c=json.dumps(kdj['instances'][k][b])
            if a!=c:
                print('BLOCK',label,k,b,'\n  tk:',a[:400],'\n  kd:',c[:400]); ok=False; break
        if not ok: break
    return ok
if sys.argv[1]=='corpus':
    cases=json.load(open(C+'/cases.json'))
    for c in cases:
        d=tempfile.mkdtemp(prefix='kdtest-tkdiff-'); home=tempfile.mkdtemp(prefix='kdtest-tkhome-')
        f,n=c['project'].split(':'); shutil.copy(f"{C}/files/{f}", f"{d}/{n}")
        if c['local']:
            f,n=c['local'].split(':'); shutil.copy(f"{C}/files/{f}", f"{d}/{n}")
        env={'PATH':os.environ['PATH'],'HOME':home,'TEST_KITCHEN_SRC':os.environ['TEST_KITCHEN_SRC']}
        if c['global_file']:
            os.makedirs(home+'/.kitchen'); shutil.copy(f"{C}/files/{c['global_file']}", home+'/.kitchen/config.yml')
        if c['env']:
            for kv in c['env'].split():
                k,v=kv.split('=',1); env[k]=v
        if c['setup']: subprocess.run(c['setup'],shell=True,cwd=d,check=True)
        tkj,kdj=both(d,env)
        print('ok ' if compare(c['id'],tkj,kdj) else 'BAD', c['id'])
        shutil.rmtree(d); shutil.rmtree(home)
def rnd_scalar(r):
    return r.choice(['a','b','x_y','1','yes','~','"q"','http://p:3128','12.10','[1, 2]','{k: v}','{k: {z: 1}}',':sym','0755'])
def rnd_block(r, kind, ind):
    c=r.random()
    if c<0.15: return ' '+r.choice(['lxd','docker','vagrant','shell','ssh','winrm','chef_zero'])+'\n'
    if c<0.17: return ' ~\n'
    lines='\n'
    keys=['name','a','b','nested','list']
    if kind=='driver': keys+=['http_proxy','https_proxy','require_chef_omnibus','pre_create_command','kitchen_root']
    if kind=='provisioner': keys+=(['run_list'] if ind else [])+['attributes','test_base_path']
    if kind=='lifecycle': keys=['pre_create','post_converge','pre_verify','finally_destroy']
    for k in r.sample(keys, r.randint(0,min(3,len(keys)))):
        if k=='nested':
            lines+=f"{ind}  nested:\n{ind}    x: {rnd_scalar(r)}\n{ind}    y: {rnd_scalar(r)}\n"
        elif k=='nested' and r.random()<0.5:
            lines+=f"{ind}  nested: {{x: 1}}\n"
        elif k in ('list','run_list'):
            lines+=f"{ind}  {k}: [{r.choice(['a','b'])}, {r.choice(['c','~'])}]\n"
        elif kind=='lifecycle':
            v=r.choice(['echo x','[echo a, echo b]','[{local: echo l}, {remote: echo r, skippable: true}]','~'])
            lines+=f"{ind}  {k}: {v}\n"
        elif k=='name':
            lines+=f"{ind}  name: {r.choice(['lxd','docker','shell','busser','inspec','ssh'])}\n"
        else:
            lines+=f"{ind}  {k}: {rnd_scalar(r)}\n"
    return lines
def rnd_config(r):
    y=''
    for kind in ['driver','provisioner','verifier','transport','lifecycle']:
        if r.random()<0.5: y+=kind+':'+rnd_block(r,kind,'')
    if r.random()<0.15: y+='driver_plugin: vagrant\n'
    if r.random()<0.15: y+='driver_config:\n  box: top\n  a: 1\n'
    if r.random()<0.15: y+='busser: '+r.choice(['0.6','{sudo: false}'])+'\n'
    if r.random()<0.15: y+='kitchen:\n  test_base_path: spec\n  log_level: warn\n'
    pnames=['ubuntu-22.04','Ubuntu_20.04','windows-2019','win10','centos/7','debian,12','fedora']
    ps=r.sample(pnames, r.randint(0,4))
    if r.random()<0.1 and ps: ps.append(ps[0])
    y+='platforms:\n'
    for p in ps:
        y+=f"  - name: '{p}'\n"
        for kind in ['driver','provisioner','verifier','transport','lifecycle']:
            if r.random()<0.3: y+=f"    {kind}:"+rnd_block(r,kind,'    ')
        for k in ['run_list','attributes','driver_config','driver_plugin','busser']:
            if r.random()<0.08:
                v={'run_list':'[p1, p2]','attributes':'{a: 1}','driver_config':'{box: p}','driver_plugin':'docker','busser':'1.0'}[k]
                y+=f"    {k}: {v}\n"
    y+='suites:\n'
    for s in r.sample(['default','web.app','my_suite','s,1','x'], r.randint(0,3)):
        y+=f"  - name: '{s}'\n"
        for kind in ['driver','provisioner','verifier','transport','lifecycle']:
            if r.random()<0.3: y+=f"    {kind}:"+rnd_block(r,kind,'    ')
        for k in ['run_list','attributes','named_run_list','data_path','roles_path','driver_plugin','includes','excludes']:
            if r.random()<0.12:
                v={'run_list':'[s1, ~]','attributes':'{b: 2}','named_run_list':'web','data_path':'d','roles_path':'r','driver_plugin':'lxd',
                   'includes':r.choice(["[ubuntu-22.04]","['/^win/i']","[fedora, '/cent/']","fedora"]),
                   'excludes':r.choice(["[ubuntu-22.04]","['/u/']","[]"])}[k]
                y+=f"    {k}: {v}\n"
    return y
if sys.argv[1]=='random':
    r=random.Random(int(sys.argv[2])); n=int(sys.argv[3]); bad=0; both_err=0
    for i in range(n):
        y=rnd_config(r)
        d=tempfile.mkdtemp(prefix='kdtest-tkrand-')
        open(d+'/kitchen.yml','w').write(y)
        env={'PATH':os.environ['PATH'],'HOME':d+'/nohome','TEST_KITCHEN_SRC':os.environ['TEST_KITCHEN_SRC']}
        tkj,kdj=both(d,env)
        if 'error' in tkj and 'error' in kdj: both_err+=1
        if not compare(f'#{i}',tkj,kdj):
            bad+=1
            if bad<=6: print(y)
        shutil.rmtree(d)
    print('bad',bad,'of',n,'both-error',both_err)
