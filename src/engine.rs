//! The running stack, read from a Docker Engine API (SPEC §6): the only module that talks to
//! the engine or runs `docker compose`. It finds a compose project's containers by compose's
//! labels and reads each one's environment, creation time and state through the Engine API
//! (bollard, over `DOCKER_HOST` or the default socket; Podman's compatible socket alike), and
//! runs the restart a step asks for. Values it reads are handed to the pure comparison in
//! `live.rs`; nothing here prints a value.

// The engine is the third edge beside fsio and ui: it starts `docker compose` and looks for
// the engine's socket itself.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, LogsOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use futures_util::StreamExt;
use jiff::Timestamp;

/// The compose labels containers carry.
const PROJECT_LABEL: &str = "com.docker.compose.project";
const SERVICE_LABEL: &str = "com.docker.compose.service";
/// Seconds an Engine API request may take (an absent engine must not hold a step up).
const TIMEOUT_SECS: u64 = 5;
/// API version 1.41 (Docker 20.10, Podman's compatible API): every field keyctl reads.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// One container of the compose project.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    /// Its compose service.
    pub service: String,
    /// Its name (`supabase-rest`).
    pub name: String,
    /// Its id.
    pub id: String,
    /// When it was created (its environment dates from then).
    pub created: Option<Timestamp>,
    /// `running`, `exited`, `restarting`, `created`, `paused`, `dead`.
    pub status: String,
    /// `healthy`, `unhealthy`, `starting` when it has a healthcheck.
    pub health: Option<String>,
    /// Its environment as the container runs with it.
    pub env: Vec<(String, String)>,
}

/// What keyctl could see of the running stack.
#[derive(Debug, Clone)]
pub(crate) enum Sight {
    /// The engine answered: the project's containers (none when the project is not up).
    Seen {
        /// Where the engine was reached.
        endpoint: String,
        /// The containers.
        containers: Vec<Container>,
    },
    /// No engine could be reached, and why (one line).
    Unreachable(String),
}

/// Where the Engine API is: `DOCKER_HOST`, else the default socket, else Podman's rootless
/// socket.
fn endpoint() -> Result<String, String> {
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && !host.is_empty()
    {
        return Ok(host);
    }
    let default = "/var/run/docker.sock";
    if Path::new(default).exists() {
        return Ok(format!("unix://{default}"));
    }
    if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
        let podman = PathBuf::from(dir).join("podman/podman.sock");
        if podman.exists() {
            return Ok(format!("unix://{}", podman.display()));
        }
    }
    Err(format!(
        "no Docker engine: DOCKER_HOST is not set and {default} does not exist"
    ))
}

fn connect(endpoint: &str) -> Result<Docker, String> {
    let version = if API_DEFAULT_VERSION.major_version == 1 {
        &API_VERSION
    } else {
        API_DEFAULT_VERSION
    };
    let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
        if !Path::new(path).exists() {
            return Err(format!(
                "no Docker engine at {endpoint}: the socket does not exist"
            ));
        }
        Docker::connect_with_unix(path, TIMEOUT_SECS, version)
    } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
        Docker::connect_with_http(endpoint, TIMEOUT_SECS, version)
    } else {
        return Err(format!(
            "DOCKER_HOST={endpoint}: keyctl reads the engine over unix:// or tcp:// only"
        ));
    };
    docker.map_err(|e| format!("cannot reach the Docker engine at {endpoint}: {e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the engine client: {e}"))
}

/// The containers of compose project `project` (stopped ones included).
#[must_use]
pub(crate) fn look(project: &str) -> Sight {
    let endpoint = match endpoint() {
        Ok(e) => e,
        Err(why) => return Sight::Unreachable(why),
    };
    let result = connect(&endpoint).and_then(|docker| {
        runtime()?.block_on(async {
            docker
                .ping()
                .await
                .map_err(|e| format!("no Docker engine answers at {endpoint}: {e}"))?;
            containers(&docker, project).await
        })
    });
    match result {
        Ok(containers) => Sight::Seen {
            endpoint,
            containers,
        },
        Err(why) => Sight::Unreachable(why),
    }
}

async fn containers(docker: &Docker, project: &str) -> Result<Vec<Container>, String> {
    let mut filters = HashMap::new();
    filters.insert(
        "label".to_owned(),
        vec![format!("{PROJECT_LABEL}={project}")],
    );
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| format!("the Docker engine refused to list containers: {e}"))?;
    let mut out = Vec::new();
    for summary in list {
        let Some(id) = summary.id else { continue };
        let info = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| format!("the Docker engine refused to inspect a container: {e}"))?;
        let config = info.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        let Some(service) = labels.get(SERVICE_LABEL).cloned() else {
            continue;
        };
        let state = info.state.unwrap_or_default();
        out.push(Container {
            service,
            name: info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            id,
            created: info.created.and_then(|c| c.parse().ok()),
            status: state
                .status
                .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            env: config
                .env
                .unwrap_or_default()
                .into_iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (kv, String::new()),
                })
                .collect(),
        });
    }
    out.sort_by(|a, b| a.service.cmp(&b.service).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// The last `lines` lines a container printed.
#[must_use]
pub(crate) fn logs(id: &str, lines: usize) -> Vec<String> {
    let Ok(endpoint) = endpoint() else {
        return Vec::new();
    };
    let Ok(docker) = connect(&endpoint) else {
        return Vec::new();
    };
    let Ok(rt) = runtime() else {
        return Vec::new();
    };
    rt.block_on(async {
        let mut stream = docker.logs(
            id,
            Some(
                LogsOptionsBuilder::new()
                    .stdout(true)
                    .stderr(true)
                    .tail(&lines.to_string())
                    .build(),
            ),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&chunk.to_string());
        }
        text.lines().map(str::to_owned).collect()
    })
}

/// How to run docker compose: `KEYCTL_COMPOSE` (a path or a command such as `docker
/// compose`), else `docker compose` when the plugin answers, else `docker-compose`.
fn compose_command() -> Vec<String> {
    if let Ok(c) = std::env::var("KEYCTL_COMPOSE")
        && !c.trim().is_empty()
    {
        return c.split_whitespace().map(str::to_owned).collect();
    }
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if plugin {
        vec!["docker".into(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

/// Where a compose project is, as `docker compose` needs it.
#[derive(Debug, Clone)]
pub(crate) struct ComposeRun {
    /// The project directory.
    pub dir: PathBuf,
    /// The compose file, then its override files.
    pub files: Vec<PathBuf>,
    /// The env file.
    pub env_file: PathBuf,
    /// The project name.
    pub name: String,
}

/// `docker compose … up -d --force-recreate --no-deps SERVICES`: recreates `services` with the
/// files as they are now.
///
/// # Errors
/// Compose could not be run or failed: its last output lines.
pub(crate) fn recreate(run: &ComposeRun, services: &[String]) -> Result<(), String> {
    if services.is_empty() {
        return Ok(());
    }
    let command = compose_command();
    let (program, first) = command.split_first().expect("a compose command");
    let mut c = Command::new(program);
    c.args(first).arg("--project-directory").arg(&run.dir);
    for f in &run.files {
        c.arg("-f").arg(f);
    }
    c.arg("--env-file")
        .arg(&run.env_file)
        .arg("-p")
        .arg(&run.name)
        .args(["up", "-d", "--force-recreate", "--no-deps"])
        .args(services)
        .current_dir(&run.dir);
    let out = c
        .output()
        .map_err(|e| format!("cannot run {}: {e}", command.join(" ")))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    Err(format!(
        "{} up failed: {}",
        command.join(" "),
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

/// Waits until every container of `services` runs (and is healthy where it has a
/// healthcheck), at most `timeout`; `progress` is told what is still awaited.
///
/// # Errors
/// The services still not ready when the time is up, with their state.
pub(crate) fn wait_ready(
    project: &str,
    services: &[String],
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<Vec<Container>, Vec<(String, String)>> {
    let start = std::time::Instant::now();
    let mut told = (String::new(), 0u64);
    loop {
        let seen = match look(project) {
            Sight::Seen { containers, .. } => containers,
            Sight::Unreachable(why) => {
                return Err(services.iter().map(|s| (s.clone(), why.clone())).collect());
            }
        };
        let waiting: Vec<(String, String)> = services
            .iter()
            .filter_map(|s| {
                let c = seen.iter().find(|c| c.service == *s);
                match c {
                    None => Some((s.clone(), "no container".to_owned())),
                    Some(c) if c.status != "running" => {
                        Some((s.clone(), format!("{} ({})", c.status, c.name)))
                    }
                    Some(c) if c.health.as_deref().is_some_and(|h| h != "healthy") => Some((
                        s.clone(),
                        format!("{} ({})", c.health.as_deref().unwrap_or_default(), c.name),
                    )),
                    Some(_) => None,
                }
            })
            .collect();
        if waiting.is_empty() {
            return Ok(seen);
        }
        if start.elapsed() >= timeout {
            return Err(waiting);
        }
        // A progress line when what is awaited changes, and every 10 seconds.
        let what = waiting
            .iter()
            .map(|(s, why)| format!("{s}: {why}"))
            .collect::<Vec<_>>()
            .join(", ");
        let secs = start.elapsed().as_secs();
        if what != told.0 || secs >= told.1 + 10 {
            progress(&format!("waiting for {what} ({secs}s)"));
            told = (what, secs);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
