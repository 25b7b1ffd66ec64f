//! `lxc-lite`: a small `lxc` look-alike on top of `lxd-client`.
//!
//! ```text
//! cargo run -p lxd-client --example lxc-lite -- info
//! cargo run -p lxd-client --example lxc-lite -- launch kitchen/busybox c1
//! cargo run -p lxd-client --example lxc-lite -- exec c1 --env A=1 -- sh -c 'echo $A'
//! cargo run -p lxd-client --example lxc-lite -- file push ./x c1/root/x --mode 0640
//! cargo run -p lxd-client --example lxc-lite -- delete c1 --force
//! # HTTPS remotes from lxc's own configuration (~/.config/lxc or $LXD_CONF), as `lxc` takes them:
//! cargo run -p lxd-client --example lxc-lite -- remote add lab https://127.0.0.1:8443 --token TOKEN
//! cargo run -p lxd-client --example lxc-lite -- exec lab:c1 -- hostname
//! cargo run -p lxd-client --example lxc-lite -- list lab:
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use lxd_client::{
    Client, FileOptions, ImportOptions, LxcConfig, ServerPin, TrustToken, UploadBody,
};
use tokio::io::AsyncWriteExt;

#[derive(Parser)]
#[command(
    name = "lxc-lite",
    about = "A small lxc look-alike built on lxd-client"
)]
struct Cli {
    /// LXD project.
    #[arg(long, global = true)]
    project: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Server information, or an instance's when NAME is given.
    Info { name: Option<String> },
    /// List instances (of `REMOTE:` when given).
    List {
        /// `REMOTE:` to list another remote's instances.
        remote: Option<String>,
        /// `table` or `json`.
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
    },
    /// Create and start an instance from a local image alias or fingerprint.
    Launch {
        image: String,
        name: String,
        /// Delete the instance when it stops.
        #[arg(long, short = 'e')]
        ephemeral: bool,
        /// Profiles (repeatable; default: `default`).
        #[arg(long, short = 'p')]
        profile: Vec<String>,
    },
    /// Run a command; streams output, forwards stdin and exits with the command's code.
    Exec {
        name: String,
        /// Environment variable KEY=VALUE (repeatable).
        #[arg(long)]
        env: Vec<String>,
        /// Working directory.
        #[arg(long)]
        cwd: Option<String>,
        /// User id.
        #[arg(long)]
        user: Option<u32>,
        /// Group id.
        #[arg(long)]
        group: Option<u32>,
        /// Force a pseudo-terminal.
        #[arg(short = 't')]
        tty: bool,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Push or pull files.
    File {
        #[command(subcommand)]
        command: FileCommand,
    },
    /// Snapshot an instance.
    Snapshot { name: String, snapshot: String },
    /// Restore an instance from a snapshot.
    Restore { name: String, snapshot: String },
    /// Start an instance.
    Start { name: String },
    /// Stop an instance.
    Stop {
        name: String,
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Delete an instance (`--force` stops it first).
    Delete {
        name: String,
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Manage images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Manage remotes (lxc's `config.yml` in `$LXD_CONF` or `~/.config/lxc`).
    Remote {
        #[command(subcommand)]
        command: RemoteCommand,
    },
    /// Print events as JSON lines.
    Events {
        /// Event types (repeatable): operation, logging, lifecycle.
        #[arg(long = "type")]
        types: Vec<String>,
    },
}

#[derive(Subcommand)]
enum RemoteCommand {
    /// Add an HTTPS remote and make this client trusted with a token (from `lxc config trust
    /// add` on the server).
    Add {
        name: String,
        /// `https://HOST[:PORT]`.
        url: String,
        /// Trust token; its server fingerprint is checked against the server's certificate.
        #[arg(long)]
        token: Option<String>,
        /// Without a token: trust the certificate the server presents (after showing it).
        #[arg(long)]
        accept_certificate: bool,
    },
    /// List remotes.
    List,
}

#[derive(Subcommand)]
enum FileCommand {
    /// Push SRC to NAME/PATH.
    Push {
        source: PathBuf,
        target: String,
        /// Mode, octal (e.g. 0640).
        #[arg(long)]
        mode: Option<String>,
        #[arg(long)]
        uid: Option<u32>,
        #[arg(long)]
        gid: Option<u32>,
        /// Push a directory recursively.
        #[arg(short = 'r', long)]
        recursive: bool,
    },
    /// Pull NAME/PATH to DST.
    Pull {
        source: String,
        target: PathBuf,
        /// Pull a directory recursively.
        #[arg(short = 'r', long)]
        recursive: bool,
    },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Import a unified tarball, or metadata + rootfs tarballs.
    Import {
        tarball: PathBuf,
        rootfs: Option<PathBuf>,
        /// Alias for the new image.
        #[arg(long)]
        alias: Option<String>,
    },
    /// List images.
    List,
    /// Delete an image by alias or fingerprint.
    Delete { image: String },
    /// Export an image by alias or fingerprint into a directory.
    Export {
        image: String,
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("Error: {}", error_text(&e));
            std::process::exit(1);
        }
    }
}

/// The error and its causes, each cause shown once: lxd-client's messages already include
/// their source's text, so anyhow's `{:#}` would repeat it.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn run(mut cli: Cli) -> Result<i32> {
    if let Command::Remote { command } = &cli.command {
        return remote(command).await;
    }
    let mut client = connect(&mut cli.command).await?;
    if let Some(p) = &cli.project {
        client = client.project(p);
    }
    let instances = client.instances();
    match cli.command {
        Command::Info { name: None } => {
            let s = client.server().await?;
            let e = &s.environment;
            println!("api_version: {}", s.api_version);
            println!("auth: {}", s.auth);
            println!("server_version: {}", e.server_version);
            println!(
                "kernel_version: {}",
                e.kernel_version.as_deref().unwrap_or("")
            );
            println!("storage: {}", e.storage.as_deref().unwrap_or(""));
            println!("api_extensions: {}", s.api_extensions.len());
        }
        Command::Info { name: Some(name) } => {
            let i = instances.get(&name).await?;
            let st = instances.state(&name).await?;
            println!("Name: {}", i.name);
            println!("Status: {}", i.status.to_uppercase());
            println!(
                "Type: {}",
                serde_json::to_value(&i.instance_type)?
                    .as_str()
                    .unwrap_or("")
            );
            println!("Architecture: {}", i.architecture);
            println!("Created: {}", i.created_at);
            println!("Profiles: {}", i.profiles.join(", "));
            if st.pid > 0 {
                println!("PID: {}", st.pid);
                println!("Processes: {}", st.processes);
            }
            if let Some(m) = st.memory {
                println!("Memory usage: {} bytes", m.usage);
            }
        }
        Command::List { format, .. } => {
            let list = instances.list_with_state().await?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string(&list)?),
                "table" => {
                    println!(
                        "{:<32} {:<8} {:<10} {:>9}",
                        "NAME", "STATE", "TYPE", "SNAPSHOTS"
                    );
                    for i in list {
                        let kind = serde_json::to_value(&i.instance_type)?;
                        println!(
                            "{:<32} {:<8} {:<10} {:>9}",
                            i.name,
                            i.status.to_uppercase(),
                            kind.as_str().unwrap_or("").to_uppercase(),
                            i.snapshots.map(|s| s.len()).unwrap_or(0)
                        );
                    }
                }
                other => bail!("unknown format {other:?} (table or json)"),
            }
        }
        Command::Launch {
            image,
            name,
            ephemeral,
            profile,
        } => {
            println!("Creating {name}");
            let is_fingerprint = image.len() >= 12 && image.chars().all(|c| c.is_ascii_hexdigit());
            let mut b = instances.create(&name).ephemeral(ephemeral);
            b = if is_fingerprint {
                b.image_fingerprint(&image)
            } else {
                b.image_alias(&image)
            };
            if !profile.is_empty() {
                b = b.profiles(profile);
            }
            match b.send().await?.wait().await {
                Err(e) if e.is_already_exists() => bail!(
                    "instance {name} already exists; pick another name or delete it first (`lxc-lite delete {name} --force`)"
                ),
                other => other?,
            };
            println!("Starting {name}");
            instances.start(&name).await?.wait().await?;
        }
        Command::Exec {
            name,
            env,
            cwd,
            user,
            group,
            tty,
            command,
        } => return exec(&client, &name, env, cwd, user, group, tty, command).await,
        Command::File { command } => file(&client, command).await?,
        Command::Snapshot { name, snapshot } => {
            instances
                .snapshots(&name)
                .create(&snapshot)
                .await?
                .wait()
                .await?;
        }
        Command::Restore { name, snapshot } => {
            instances
                .snapshots(&name)
                .restore(&snapshot)
                .await?
                .wait()
                .await?;
        }
        Command::Start { name } => {
            instances.start(&name).await?.wait().await?;
        }
        Command::Stop { name, force } => {
            let stop = instances.stop(&name);
            let stop = if force { stop.force() } else { stop };
            stop.await?.wait().await?;
        }
        Command::Delete { name, force: true } => instances.delete_force(&name).await?,
        Command::Delete { name, force: false } => {
            instances.delete(&name).await?.wait().await?;
        }
        Command::Image { command } => image(&client, command).await?,
        // Handled before connecting.
        Command::Remote { .. } => {}
        Command::Events { types } => {
            let mut events = client.events().types(types).subscribe().await?;
            let mut out = std::io::stdout();
            while let Some(ev) = events.next().await {
                writeln!(out, "{}", serde_json::to_string(&ev?)?)?;
                out.flush()?;
            }
        }
    }
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
async fn exec(
    client: &Client,
    name: &str,
    env: Vec<String>,
    cwd: Option<String>,
    user: Option<u32>,
    group: Option<u32>,
    tty: bool,
    command: Vec<String>,
) -> Result<i32> {
    let mut b = client
        .instances()
        .exec(name, command.clone())
        .interactive(tty);
    for kv in env {
        let (k, v) = kv.split_once('=').context("--env takes KEY=VALUE")?;
        b = b.env(k, v);
    }
    if let Some(d) = cwd {
        b = b.cwd(d);
    }
    if let Some(u) = user {
        b = b.user(u);
    }
    if let Some(g) = group {
        b = b.group(g);
    }
    let mut p = b.spawn().await?;
    if let Some(stdin) = p.take_stdin() {
        // Forward our stdin; when it ends the command gets end-of-file.
        tokio::spawn(async move {
            let _ = stdin.copy_from(tokio::io::stdin()).await;
        });
    }
    let out = p.take_stdout().map(|s| {
        tokio::spawn(async move {
            let mut s = s;
            let mut o = tokio::io::stdout();
            while let Some(Ok(chunk)) = s.next().await {
                let _ = o.write_all(&chunk).await;
                let _ = o.flush().await;
            }
        })
    });
    let err = p.take_stderr().map(|s| {
        tokio::spawn(async move {
            let mut s = s;
            let mut o = tokio::io::stderr();
            while let Some(Ok(chunk)) = s.next().await {
                let _ = o.write_all(&chunk).await;
                let _ = o.flush().await;
            }
        })
    });
    if let Some(t) = out {
        let _ = t.await;
    }
    if let Some(t) = err {
        let _ = t.await;
    }
    let status = p.wait().await?;
    if let Some(failure) = &status.failure {
        eprintln!("Error: {failure}");
    }
    Ok(status.code)
}

/// Splits `NAME/PATH` into the instance name and an absolute path.
fn split_target(target: &str) -> Result<(String, String)> {
    let (name, path) = target
        .split_once('/')
        .with_context(|| format!("{target:?} is not NAME/PATH"))?;
    Ok((name.to_string(), format!("/{path}")))
}

fn parse_mode(mode: &str) -> Result<u32> {
    u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .with_context(|| format!("mode {mode:?} is not octal"))
}

fn base_name(p: &Path) -> Result<String> {
    Ok(p.file_name()
        .with_context(|| format!("{} has no file name", p.display()))?
        .to_string_lossy()
        .into_owned())
}

async fn file(client: &Client, command: FileCommand) -> Result<()> {
    match command {
        FileCommand::Push {
            source,
            target,
            mode,
            uid,
            gid,
            recursive,
        } => {
            let (name, mut path) = split_target(&target)?;
            let mut dir_opts = FileOptions::default();
            if let Some(u) = uid {
                dir_opts = dir_opts.uid(u);
            }
            if let Some(g) = gid {
                dir_opts = dir_opts.gid(g);
            }
            let mut opts = dir_opts;
            if let Some(m) = mode {
                opts = opts.mode(parse_mode(&m)?);
            }
            let files = client.instances().files(&name);
            if recursive {
                // As lxc: `-r DIR c1/dest` makes c1/dest/DIR.
                let dest = format!("{}/{}", path.trim_end_matches('/'), base_name(&source)?);
                files.push_dir(&source, &dest, opts).await?;
            } else {
                if path.ends_with('/') {
                    path.push_str(&base_name(&source)?);
                }
                if opts.mode.is_none() {
                    use std::os::unix::fs::PermissionsExt;
                    let m = std::fs::metadata(&source)?.permissions().mode() & 0o7777;
                    opts = opts.mode(m);
                }
                files
                    .push(&path, UploadBody::path(&source).await?, opts)
                    .await?;
            }
        }
        FileCommand::Pull {
            source,
            target,
            recursive,
        } => {
            let (name, path) = split_target(&source)?;
            let files = client.instances().files(&name);
            let base = base_name(Path::new(&path))?;
            let dest = if target.is_dir() {
                target.join(base)
            } else {
                target
            };
            if recursive {
                files.pull_dir(&path, &dest).await?;
            } else {
                files.pull_file(&path, &dest).await?;
            }
        }
    }
    Ok(())
}

/// An alias's target, or the argument itself (a fingerprint).
async fn resolve_image(client: &Client, image: String) -> Result<String> {
    match client.images().get_alias(&image).await {
        Ok(a) => Ok(a.target),
        Err(e) if e.is_not_found() => Ok(image),
        Err(e) => Err(e.into()),
    }
}

async fn image(client: &Client, command: ImageCommand) -> Result<()> {
    let images = client.images();
    match command {
        ImageCommand::Import {
            tarball,
            rootfs,
            alias,
        } => {
            let opts = ImportOptions::default().filename(base_name(&tarball)?);
            let op = match rootfs {
                None => {
                    images
                        .import(UploadBody::path(&tarball).await?, opts)
                        .await?
                }
                Some(r) => {
                    images
                        .import_split(
                            UploadBody::path(&tarball).await?,
                            UploadBody::path(&r).await?,
                            opts,
                        )
                        .await?
                }
            };
            let done = op.wait().await?;
            let fp = done
                .metadata_str("fingerprint")
                .context("no fingerprint in the result")?;
            if let Some(a) = alias {
                images.create_alias(&a, fp, "").await?;
            }
            println!("Image imported with fingerprint: {fp}");
        }
        ImageCommand::List => {
            println!(
                "{:<24} {:<12} {:<10} {:>10}  DESCRIPTION",
                "ALIAS", "FINGERPRINT", "TYPE", "SIZE"
            );
            for i in images.list().await? {
                let alias = i
                    .aliases
                    .first()
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                println!(
                    "{:<24} {:<12} {:<10} {:>10}  {}",
                    alias,
                    &i.fingerprint[..12.min(i.fingerprint.len())],
                    i.image_type.to_uppercase(),
                    i.size,
                    i.properties
                        .get("description")
                        .map(String::as_str)
                        .unwrap_or("")
                );
            }
        }
        ImageCommand::Delete { image } => {
            let fp = resolve_image(client, image).await?;
            images.delete(&fp).await?.wait().await?;
        }
        ImageCommand::Export { image, dir } => {
            let fp = resolve_image(client, image).await?;
            for path in images.export(&fp).await?.write_to_dir(&dir, &fp).await? {
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

/// The argument that may carry a `REMOTE:` prefix, as in `lxc exec lab:c1`.
fn remote_arg(command: &mut Command) -> Option<&mut String> {
    match command {
        Command::Info { name } | Command::List { remote: name, .. } => name.as_mut(),
        Command::Launch { name, .. }
        | Command::Exec { name, .. }
        | Command::Snapshot { name, .. }
        | Command::Restore { name, .. }
        | Command::Start { name }
        | Command::Stop { name, .. }
        | Command::Delete { name, .. } => Some(name),
        Command::File {
            command: FileCommand::Push { target: name, .. },
        }
        | Command::File {
            command: FileCommand::Pull { source: name, .. },
        } => Some(name),
        Command::Image {
            command: ImageCommand::Delete { image } | ImageCommand::Export { image, .. },
        } => Some(image),
        _ => None,
    }
}

/// Connects to the remote named in the command (its `REMOTE:` prefix is removed), or to lxc's
/// default remote; the remote's project applies.
async fn connect(command: &mut Command) -> Result<Client> {
    let config = LxcConfig::load()?;
    let remote = match remote_arg(command) {
        Some(arg) => {
            let (remote, rest) = config.parse_remote(arg)?;
            *arg = rest.to_string();
            remote
        }
        None => config.default_remote.clone(),
    };
    if let Command::Info { name } | Command::List { remote: name, .. } = command
        && name.as_deref() == Some("")
    {
        *name = None;
    }
    Ok(Client::from_lxc_config(&config, &remote).await?)
}

async fn remote(command: &RemoteCommand) -> Result<i32> {
    let mut config = LxcConfig::load()?;
    match command {
        RemoteCommand::List => {
            println!("{:<16} {:<40} {:<14} PROJECT", "NAME", "URL", "PROTOCOL");
            for (name, r) in &config.remotes {
                let default = if *name == config.default_remote {
                    " (current)"
                } else {
                    ""
                };
                println!(
                    "{:<16} {:<40} {:<14} {}",
                    format!("{name}{default}"),
                    r.addr,
                    r.protocol.as_deref().unwrap_or("lxd"),
                    r.project.as_deref().unwrap_or("")
                );
            }
        }
        RemoteCommand::Add {
            name,
            url,
            token,
            accept_certificate,
        } => {
            if config.remotes.contains_key(name) {
                bail!("the remote {name:?} already exists");
            }
            let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let identity =
                config.client_identity_or_generate(&format!("{user}@{}", host.trim()))?;
            let cert = lxd_client::fetch_server_certificate(url).await?;
            let fingerprint = cert.fingerprint();
            match token {
                Some(t) => {
                    let decoded = TrustToken::decode(t)?;
                    if decoded.fingerprint != fingerprint.as_str() {
                        bail!(
                            "certificate fingerprint mismatch between the token ({}) and the server ({fingerprint})",
                            decoded.fingerprint
                        );
                    }
                }
                None if *accept_certificate => {
                    eprintln!("Certificate fingerprint: {fingerprint} (accepted)");
                }
                None => bail!(
                    "Certificate fingerprint: {fingerprint}\nPass --accept-certificate to trust it, or --token"
                ),
            }
            let client = Client::https(
                url,
                ServerPin::Certificate(cert.clone()),
                Some(identity.clone()),
            )?;
            if client.server().await?.auth != "trusted" {
                let Some(t) = token else {
                    bail!("the server does not trust this client; pass --token");
                };
                client
                    .certificates()
                    .trust_with_token(identity.certificate(), t)
                    .await?;
            }
            if client.server().await?.auth != "trusted" {
                bail!("the server still does not trust this client");
            }
            config.add_https_remote(name, url, &cert)?;
            config.save()?;
            println!("Remote {name} added");
        }
    }
    Ok(0)
}
