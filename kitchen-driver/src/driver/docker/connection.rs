//! [`DockerConnection`]: the transport to a container (exec, archive upload and download,
//! a terminal for `login`) through the engine API.

use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::report::{LineSplitter, OutputSink, OutputStream};
use crate::transport::tty::TtyRuntime;
use crate::transport::{
    Connection, EXEC_OUTPUT_GRACE, ExecMarker, ExecOutput, ExecRequest, KillOnDrop, Target,
    TtySession, UploadSet,
};

/// A connection to a container: exec, archive upload and download through the engine API.
#[derive(Debug, Clone)]
pub struct DockerConnection {
    pub(super) docker: Docker,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) instance: String,
    pub(super) user: Option<String>,
    /// The engine's address when it is not the default socket (for Ansible's docker
    /// connection).
    pub(super) docker_host: Option<String>,
    /// The engine's endpoint, for errors that say the engine went away.
    pub(super) endpoint: super::endpoint::Endpoint,
}

impl DockerConnection {
    /// The exit code of a finished exec. The output stream ends when the process closes its
    /// output; the exit code follows shortly.
    async fn exit_code(&self, exec_id: &str) -> Result<i64> {
        self.exit_code_polling(exec_id, Duration::from_millis(200))
            .await
    }

    /// As [`DockerConnection::exit_code`], asking at most every `max_delay`.
    async fn exit_code_polling(&self, exec_id: &str, max_delay: Duration) -> Result<i64> {
        let mut delay = Duration::from_millis(5);
        loop {
            let inspect = match self.docker.inspect_exec(exec_id).await {
                Ok(inspect) => inspect,
                // Execs live in the engine's memory: one it no longer knows was lost to a
                // restart (or to the container's removal) while its command ran.
                Err(e) if super::is_not_found(&e) => {
                    return Err(self.endpoint.exec_lost(&self.instance, e));
                }
                Err(e) => return Err(self.err("inspecting exec", e)),
            };
            if inspect.running != Some(true) {
                return Ok(inspect.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max_delay);
        }
    }

    /// Runs `sh -c script` as root without attaching to it (the kill of a stopped exec).
    async fn run_detached_as_root(&self, script: String) -> Result<()> {
        let created = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions::<String> {
                    cmd: Some(vec!["sh".into(), "-c".into(), script]),
                    user: Some("0".into()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err("creating the kill of a stopped exec", e))?;
        self.docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| self.err("starting the kill of a stopped exec", e))?;
        Ok(())
    }

    fn err(&self, action: impl Into<String>, source: BollardError) -> Error {
        self.endpoint
            .docker_error(action, self.instance.clone(), source)
    }
}

#[async_trait]
impl Connection for DockerConnection {
    async fn exec(&self, req: &ExecRequest, sink: &dyn OutputSink) -> Result<ExecOutput> {
        let marker = ExecMarker::new();
        let mut env: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("{}={}", marker.env().0, marker.env().1));
        let created = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions::<String> {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(req.argv.clone()),
                    env: Some(env),
                    user: req.user.clone().or_else(|| self.user.clone()),
                    working_dir: req.workdir.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err(format!("creating exec `{}`", req.display()), e))?;
        // Docker kills nothing when the client goes away: dropped before the command ended
        // (a step timeout, an abort), this kills every process of the exec.
        let mut kill_guard = {
            let this = self.clone();
            let script = marker.kill_script();
            KillOnDrop::new(Box::pin(async move {
                let _ = this.run_detached_as_root(script).await;
            }))
        };
        let started = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| self.err(format!("starting exec `{}`", req.display()), e))?;
        let mut out = ExecOutput::default();
        if let StartExecResults::Attached { mut output, .. } = started {
            let (mut so, mut se) = (LineSplitter::default(), LineSplitter::default());
            let out = &mut out;
            let read = async {
                while let Some(item) = output.next().await {
                    match item.map_err(|e| {
                        self.err(format!("reading output of `{}`", req.display()), e)
                    })? {
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            out.stdout.push_str(&String::from_utf8_lossy(&message));
                            so.push(&message, |l| sink.line(OutputStream::Stdout, l));
                        }
                        LogOutput::StdErr { message } => {
                            out.stderr.push_str(&String::from_utf8_lossy(&message));
                            se.push(&message, |l| sink.line(OutputStream::Stderr, l));
                        }
                        LogOutput::StdIn { .. } => {}
                    }
                }
                Ok::<(), Error>(())
            };
            tokio::pin!(read);
            // The output stream normally ends with the command; if a process it started in
            // the background keeps it open, stop reading a grace period after the command
            // itself ended.
            let ended = async {
                if self
                    .exit_code_polling(&created.id, Duration::from_secs(1))
                    .await
                    .is_err()
                {
                    // Cannot tell when it ends: the stream alone decides.
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(EXEC_OUTPUT_GRACE).await;
            };
            let finished = tokio::select! {
                r = &mut read => Some(r),
                () = ended => None,
            };
            match finished {
                Some(r) => r?,
                None => sink.line(
                    OutputStream::Stderr,
                    &format!(
                        "kitchen-driver: stopped reading output {}s after `{}` ended: a process it started in the background still holds stdout or stderr open",
                        EXEC_OUTPUT_GRACE.as_secs(),
                        req.display()
                    ),
                ),
            }
            so.finish(|l| sink.line(OutputStream::Stdout, l));
            se.finish(|l| sink.line(OutputStream::Stderr, l));
        }
        out.exit_code = self.exit_code(&created.id).await?;
        kill_guard.disarm();
        Ok(out)
    }

    /// Streams the upload as a tar archive built while it is sent (see
    /// [`UploadSet::into_tar_stream`]): a large cookbook or roles tree is never held in memory.
    async fn upload_set(&self, files: UploadSet, remote_dir: &str) -> Result<()> {
        self.docker
            .upload_to_container(
                &self.id,
                Some(UploadToContainerOptions {
                    path: remote_dir.to_string(),
                    ..Default::default()
                }),
                bollard::body_try_stream(files.into_tar_stream()),
            )
            .await
            .map_err(|e| self.err(format!("uploading into {remote_dir}"), e))
    }

    async fn download_tar(&self, remote: &str) -> Result<Vec<u8>> {
        let mut stream = self.docker.download_from_container(
            &self.id,
            Some(DownloadFromContainerOptions {
                path: remote.to_string(),
            }),
        );
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(
                &chunk.map_err(|e| self.err(format!("downloading {remote}"), e))?,
            );
        }
        Ok(data)
    }

    async fn open_tty(
        &self,
        argv: &[String],
        env: &[(String, String)],
        width: u16,
        height: u16,
    ) -> Result<TtySession> {
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let created = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions::<String> {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    cmd: Some(argv.to_vec()),
                    env: (!env.is_empty()).then_some(env),
                    user: self.user.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err("creating the login exec", e))?;
        let started = self
            .docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    tty: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| self.err("starting the login exec", e))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(Error::Runtime {
                instance: self.instance.clone(),
                message: "the login exec started detached".into(),
            });
        };
        let mut runtime = DockerTty {
            docker: self.docker.clone(),
            exec_id: created.id.clone(),
            input,
        };
        runtime.resize(width, height).await;
        let (session, ends) = TtySession::channels();
        let this = self.clone();
        tokio::spawn(async move {
            let output = output.map(|item| item.ok().map(|c| c.into_bytes().to_vec()));
            let exit = ends.pump(output, &mut runtime).await;
            let _ = exit.send(this.exit_code(&created.id).await);
        });
        Ok(session)
    }

    fn target(&self) -> Target {
        Target::Docker {
            container_id: self.id.clone(),
            container_name: self.name.clone(),
            docker_host: self.docker_host.clone(),
        }
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    async fn resource_usage(&self) -> Result<Option<crate::transport::ResourceUsage>> {
        // One sample, without waiting for a second one to compute a CPU percentage.
        let options = bollard::query_parameters::StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let stats = self.docker.stats(&self.id, Some(options)).next().await;
        let Some(stats) = stats else { return Ok(None) };
        let stats = stats.map_err(|source| self.err("reading container stats", source))?;
        let memory = stats.memory_stats.as_ref();
        let cpu = stats
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage);
        Ok(Some(crate::transport::ResourceUsage::new(
            memory.and_then(|m| m.usage),
            memory.and_then(|m| m.max_usage).filter(|m| *m > 0),
            // Docker answers 0 when it cannot read the cgroup's counters.
            cpu.filter(|c| *c > 0).map(Duration::from_nanos),
        )))
    }
}

/// The engine's side of a `login` exec: its attached input and its resize call.
struct DockerTty {
    docker: Docker,
    exec_id: String,
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

#[async_trait]
impl TtyRuntime for DockerTty {
    async fn write(&mut self, data: Vec<u8>) -> bool {
        use tokio::io::AsyncWriteExt;
        let ok = self.input.write_all(&data).await.is_ok();
        let _ = self.input.flush().await;
        ok
    }

    async fn close_input(&mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = self.input.shutdown().await;
    }

    async fn resize(&mut self, width: u16, height: u16) {
        let options = ResizeExecOptions { width, height };
        let _ = self.docker.resize_exec(&self.exec_id, options).await;
    }
}
