#!/usr/bin/env bash
# Benchmark: ecs-runner against moto with 200 instances, counting AWS API calls on the wire
# through a counting proxy on loopback (benches/counting_proxy.py), and the peak RSS of
# ecs-runner (GNU time). Two runs of the same project: the second must register nothing.
#
# What the issue asks for 200 tasks: exactly 200 RunTask, at most 2 DescribeTasks per polling
# round (100 tasks per call), no RegisterTaskDefinition on an unchanged rerun.
#
# Other test runs on the same moto change its global task state machine (ecs-runner's moto
# tests do): on a shared host, give the benchmark a moto of its own (KITCHEN_MOTO_PORT).
#
# Needs moto on 127.0.0.1:${KITCHEN_MOTO_PORT:-5005} (scripts/setup-host starts it). Do not run
# it beside ecs-runner's moto tests: moto's task state machine is global to the server.
#
# Usage: ecs-runner/benches/calls.sh [N]   (N instances, default 200; PROFILE=debug to skip the
#        release build; BENCH_KEEP=DIR keeps each run's call log, one TSV line per call: time,
#        action, tasks named, SDK attempt, HTTP status)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
n="${1:-200}"
profile="${PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --release -q -p ecs-runner --manifest-path "$repo/Cargo.toml" >&2
else
  cargo build -q -p ecs-runner --manifest-path "$repo/Cargo.toml" >&2
fi
bin="$repo/target/$profile/ecs-runner"
python=/opt/kitchen-moto/bin/python
moto="http://127.0.0.1:${KITCHEN_MOTO_PORT:-5005}"
proxy_port="${PROXY_PORT:-5098}"
proxy="http://127.0.0.1:$proxy_port"
cluster="ecsbench-$$-0-calls"

work="$(mktemp -d "${TMPDIR:-/tmp}/ecsbench-$$-0-XXXXXX")"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

# The cluster: one container instance that holds two runs of 200 tasks of 8 CPU units and
# 16 MiB (moto frees no resources when its state machine stops a task).
"$python" - "$moto" "$cluster" > "$work/capacity" <<'PY'
import boto3, json, sys
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1")
ecs, ec2, cluster = boto3.client("ecs", **kw), boto3.client("ec2", **kw), sys.argv[2]
ecs.create_cluster(clusterName=cluster)
image = ec2.describe_images()["Images"][0]["ImageId"]
inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.4xlarge")["Instances"][0]
doc = {"instanceId": inst["InstanceId"], "region": "us-east-1", "availabilityZone": "us-east-1a",
       "instanceType": "m5.4xlarge", "imageId": image, "privateIp": "10.0.0.1",
       "accountId": "123456789012", "architecture": "x86_64"}
ci = ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps(doc))
print(inst["InstanceId"], ci["containerInstance"]["containerInstanceArn"])
PY
read -r instance_id container_instance < "$work/capacity"

# Each task state lasts 6 DescribeTasks (moto's default is 1), so all 200 tasks are running at
# once and a polling round needs two DescribeTasks calls. Restored on exit.
curl -sf -X POST "$moto/moto-api/state-manager/set-transition" \
  -d '{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 6}}'

cleanup() {
  curl -sf -X POST "$moto/moto-api/state-manager/unset-transition" -d '{"model_name": "ecs::task"}' || true
  [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null || true
  (cd "$work/project" 2>/dev/null && AWS_ENDPOINT_URL="$moto" "$bin" cleanup --cluster "$cluster" >/dev/null 2>&1) || true
  "$python" - "$moto" "$cluster" "$instance_id" "$container_instance" <<'PY' || true
import boto3, sys
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1")
ecs, ec2 = boto3.client("ecs", **kw), boto3.client("ec2", **kw)
ecs.deregister_container_instance(cluster=sys.argv[2], containerInstance=sys.argv[4], force=True)
ecs.delete_cluster(cluster=sys.argv[2])
ec2.terminate_instances(InstanceIds=[sys.argv[3]])
PY
  rm -rf "$work"
}
trap cleanup EXIT

# A project of N instances: 20 platforms x N/20 suites, each a shell converge and verify.
mkdir -p "$work/project"
{
  echo 'driver: {name: docker, image: "kitchen/busybox:latest"}'
  echo "provisioner: {name: shell, command: 'echo converged'}"
  echo 'verifier: {name: shell}'
  echo 'ecs: {launch_type: EC2, cpu: 8, memory: 16, log_group: /ecsbench}'
  echo 'platforms:'
  for p in $(seq 1 20); do echo "  - name: p$p"; done
  echo 'suites:'
  for s in $(seq 1 $(((n + 19) / 20))); do echo "  - name: s$s"; done
} > "$work/project/kitchen.yml"

"$python" "$here/counting_proxy.py" "$proxy_port" "$moto" "$work/calls.tsv" &
proxy_pid=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "$proxy/moto-api/" && break; sleep 0.1; done

run() { # LABEL
  : > "$work/calls.tsv"
  local start end
  start=$(date +%s%N)
  (cd "$work/project" && AWS_ENDPOINT_URL="$proxy" /usr/bin/time -f '%M' -o "$work/rss" \
    "$bin" run --cluster "$cluster" --format json > "$work/$1.jsonl") || echo "exit $? (see $work/$1.jsonl)" >&2
  end=$(date +%s%N)
  # Lines are written as answers come back: order them by arrival.
  sort -n "$work/calls.tsv" > "$work/$1.tsv"
  [ -n "${BENCH_KEEP:-}" ] && cp "$work/$1.tsv" "$BENCH_KEEP/$1.tsv"
  awk -v label="$1" -v secs="$(((end - start) / 1000000))" -v rss="$(tail -1 "$work/rss")" -F'\t' '
    { calls[$2]++; if ($4 + 0 > 1) retries++; if ($5 + 0 >= 500) errors++ }
    $2 == "DescribeTasks" {
      # A polling round names each running task once: a call that names a task the round
      # already named starts the next round. (A retried call would too; the SDK-retries
      # column counts those.)
      split($6, ids, ",")
      new_round = (rounds == 0)
      for (i in ids) if (ids[i] in seen) new_round = 1
      if (new_round) { rounds++; in_round = 0; delete seen }
      for (i in ids) seen[ids[i]] = 1
      in_round++; if (in_round > max_round) max_round = in_round
      if ($3 + 0 > max_tasks) max_tasks = $3 + 0
    }
    END {
      printf "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.1f s | %.1f MiB |\n", label,
        calls["RegisterTaskDefinition"], calls["DescribeTaskDefinition"], calls["RunTask"],
        calls["DescribeTasks"], rounds, max_round, max_tasks, calls["GetLogEvents"],
        retries, errors, secs / 1000, rss / 1024
    }' "$work/$1.tsv"
}

echo "instances: $(cd "$work/project" && "$bin" list | tail -n +2 | wc -l), profile: $profile"
echo
echo "| run | RegisterTaskDefinition | DescribeTaskDefinition | RunTask | DescribeTasks | polling rounds | max DescribeTasks per round | max tasks per DescribeTasks | GetLogEvents | SDK retries | 5xx answers | wall | peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
run first
run unchanged-rerun
