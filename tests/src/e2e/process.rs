//! Child processes for end-to-end tests: each in its own process group, stdout and stderr
//! in files under a per-test directory, the whole group killed when the guard drops (also
//! when the test panics); and bounded waits for readiness.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use super::{Context, E2eError, Result};

/// A directory for one test's configs, logs, captures and recordings. Removed on drop
/// unless [`keep`](Self::keep) was called (a failed run keeps it) or `SRTPGATE_E2E_KEEP` is
/// set.
pub struct Workdir {
    path: PathBuf,
    keep: Mutex<bool>,
    logs: Mutex<Vec<(String, PathBuf)>>,
}

impl Workdir {
    pub fn new(name: &str) -> Result<Self> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        static SWEPT: Once = Once::new();
        SWEPT.call_once(sweep_orphans);
        let path = std::env::temp_dir().join("srtpgate-e2e").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        if path.exists() {
            fs::remove_dir_all(&path).context(format!("clearing {}", path.display()))?;
        }
        fs::create_dir_all(&path).context(format!("creating {}", path.display()))?;
        Ok(Workdir {
            path,
            keep: Mutex::new(std::env::var_os("SRTPGATE_E2E_KEEP").is_some()),
            logs: Mutex::new(Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, created if missing.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let p = self.path.join(name);
        fs::create_dir_all(&p).context(format!("creating {}", p.display()))?;
        Ok(p)
    }

    /// Keeps the directory after the test.
    pub fn keep(&self) {
        *self.keep.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    fn register_log(&self, name: String, path: PathBuf) {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name, path));
    }

    /// The last `lines` lines of every log written here, labelled.
    pub fn log_tails(&self, lines: usize) -> String {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, path) in logs.iter() {
            out.push_str(&format!("----- {name} ({}) -----\n", path.display()));
            out.push_str(&tail(path, lines));
            out.push('\n');
        }
        out
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let keep = *self.keep.lock().unwrap_or_else(|p| p.into_inner());
        if keep || thread::panicking() {
            eprintln!("e2e: kept {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Kills processes left by an earlier test process that died without unwinding (killed by
/// a timeout, say): Kamailio's workers do not follow their leader. They are recognised by a
/// work directory `srtpgate-e2e/<name>-<pid>-<seq>` on their command line whose `<pid>` no
/// longer runs.
fn sweep_orphans() {
    let Ok(procs) = fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let Some(owner) = cmdline.split("/srtpgate-e2e/").skip(1).find_map(|rest| {
            let dir = rest.split(['/', ' ']).next()?;
            dir.rsplit('-').nth(1)?.parse::<u32>().ok()
        }) else {
            continue;
        };
        if owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists() {
            // SAFETY: kill(2) on one process id; touches no memory of ours.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The last `lines` lines of a text file (lossy UTF-8, carriage returns as newlines).
pub fn tail(path: &Path, lines: usize) -> String {
    let mut bytes = Vec::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .is_err()
    {
        return String::from("(no log)");
    }
    let text = String::from_utf8_lossy(&bytes).replace('\r', "\n");
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running child process, leader of its own process group. Dropping it stops the group.
pub struct Child {
    name: String,
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Child {
    /// Starts `cmd` with stdin from /dev/null and stdout/stderr into `<name>.out` and
    /// `<name>.err` in `wd`.
    pub fn spawn(wd: &Workdir, name: &str, mut cmd: Command) -> Result<Self> {
        let stdout = wd.path().join(format!("{name}.out"));
        let stderr = wd.path().join(format!("{name}.err"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout)?)
            .stderr(File::create(&stderr)?)
            .process_group(0);
        // If the test process dies without unwinding (killed, aborted), take the leader
        // along instead of leaving it running.
        // SAFETY: the closure runs between fork and exec and calls only prctl(2), which is
        // async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .context(format!("starting {name} ({:?})", cmd.get_program()))?;
        wd.register_log(format!("{name} stdout"), stdout.clone());
        wd.register_log(format!("{name} stderr"), stderr.clone());
        Ok(Child {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            status: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_path(&self) -> &Path {
        &self.stdout
    }

    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// The exit status, if the leader has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// An error if the process has exited: used inside readiness waits.
    pub fn check_running(&mut self) -> Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(s) => Err(E2eError::new(format!(
                "{} exited early ({s}); stderr:\n{}\nstdout:\n{}",
                self.name,
                tail(&self.stderr, 30),
                tail(&self.stdout, 30)
            ))),
        }
    }

    /// Whether stdout or stderr contains `needle` so far.
    pub fn log_contains(&self, needle: &str) -> bool {
        [&self.stdout, &self.stderr].iter().any(|p| {
            fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
        })
    }

    /// Waits until the output contains `needle`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let what = format!("{} to log {needle:?}", self.name);
        wait_until(&what, timeout, || {
            if self.log_contains(needle) {
                return Ok(Some(()));
            }
            self.check_running()?;
            Ok(None)
        })
    }

    fn signal_group(&self, sig: i32) {
        // SAFETY: kill(2) with a negative pid signals the process group we created; it
        // touches no memory of ours.
        unsafe {
            libc::kill(-(self.child.id() as i32), sig);
        }
    }

    /// Sends `first` (SIGTERM, SIGINT) to the group, waits up to `grace` for the leader, then
    /// kills whatever is left of the group.
    pub fn stop_with(&mut self, first: i32, grace: Duration) -> Option<ExitStatus> {
        if self.exited().is_none() {
            self.signal_group(first);
            let end = Instant::now() + grace;
            while self.exited().is_none() && Instant::now() < end {
                thread::sleep(Duration::from_millis(10));
            }
        }
        // Children of the leader (Kamailio's workers, tshark's dumpcap) may outlive it.
        self.signal_group(libc::SIGKILL);
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        self.status
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.stop_with(libc::SIGTERM, grace)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop(Duration::from_millis(300));
    }
}

/// Polls `probe` every 20 ms until it returns `Some`, fails, or `timeout` passes.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = probe()? {
            return Ok(v);
        }
        if Instant::now() >= end {
            return Err(E2eError::new(format!(
                "timed out after {timeout:?} waiting for {what}"
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The path of `program` on PATH (or the usual sbin directories), if installed.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The path of `program`, or an error naming the Debian package that provides it.
pub fn require(program: &str, package: &str) -> Result<PathBuf> {
    which(program).ok_or_else(|| {
        E2eError::new(format!(
            "{program} is not installed: apt-get install {package} (tools/test.sh installs it)"
        ))
    })
}

/// Runs one end-to-end scenario in a fresh [`Workdir`] named `name` and reports it as a
/// test: on success each note is printed as `ok: ...`; on failure the directory is kept
/// and the test panics with the error, the directory's path and the tails of every log.
pub fn run_in_workdir(name: &str, scenario: impl FnOnce(&Workdir) -> Result<Vec<String>>) {
    let wd = Workdir::new(name).expect("work directory");
    match scenario(&wd) {
        Ok(notes) => {
            for n in notes {
                println!("ok: {n}");
            }
        }
        Err(e) => {
            wd.keep();
            panic!(
                "{e}\n\nwork directory: {}\n{}",
                wd.path().display(),
                wd.log_tails(40)
            );
        }
    }
}
