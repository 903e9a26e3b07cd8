//! Helpers shared by the benchmark binaries of several crates: summary statistics, the
//! machine note and report file of every bench report, `/proc` memory readings and a
//! guard for the process under measurement.
//!
//! The statistics and parsers are pure; the rest reads the host (`/proc`, `uname`, …) or
//! spawns processes and is meant for `harness = false` bench binaries only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// `(median, min, max)` of `v`; `None` when `v` is empty. The median of an even count is
/// the mean of the two middle values; NaNs sort last (`f64::total_cmp`).
pub fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len();
    let med = if m % 2 == 1 {
        s[m / 2]
    } else {
        (s[m / 2 - 1] + s[m / 2]) / 2.0
    };
    Some((med, s[0], s[m - 1]))
}

/// Median of `v` (see [`stats`]); NaN when `v` is empty.
pub fn median(v: &[f64]) -> f64 {
    stats(v).map_or(f64::NAN, |s| s.0)
}

/// `**median** [min..max]` with `digits` decimals (Markdown), or `n/a` when `v` is empty.
pub fn fmt_stats(v: &[f64], digits: usize) -> String {
    match stats(v) {
        Some((m, lo, hi)) => format!("**{m:.digits$}** [{lo:.digits$}..{hi:.digits$}]"),
        None => "n/a".into(),
    }
}

/// The three load averages (1, 5, 15 min) of a `/proc/loadavg` text.
pub fn load3(loadavg: &str) -> String {
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(VmRSS, VmHWM)` in KiB from the text of a `/proc/<pid>/status` file.
pub fn parse_status_kib(status: &str) -> Option<(u64, u64)> {
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// `(VmRSS, VmHWM)` in KiB of process `pid`; `None` when it is gone or unreadable.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    parse_status_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Polls `f` every 20 ms until it returns true (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Trimmed stdout of the command `args` (program first); empty when it cannot run.
pub fn sh_out(args: &[&str]) -> String {
    let Some((prog, rest)) = args.split_first() else {
        return String::new();
    };
    Command::new(prog)
        .args(rest)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// First non-blank line of stdout and stderr of `args` (a `--version` call), or
/// `not installed` when it cannot run.
pub fn version_line(args: &[&str]) -> String {
    let Some((prog, rest)) = args.split_first() else {
        return "not installed".into();
    };
    Command::new(prog)
        .args(rest)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "not installed".into())
}

/// Whether `prog` is found on `PATH` (`command -v`).
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Wall-clock facts of one bench run: start time and the load average at start and end.
pub struct RunClock {
    /// Start, `YYYY-MM-DD HH:MM UTC`.
    pub started: String,
    t0: Instant,
    load_start: String,
}

impl RunClock {
    /// Notes the start time and the load average now.
    pub fn start() -> RunClock {
        RunClock {
            started: sh_out(&["date", "-u", "+%Y-%m-%d %H:%M UTC"]),
            t0: Instant::now(),
            load_start: loadavg(),
        }
    }

    /// `(time since start, (load average text at start, now))`.
    pub fn finish(&self) -> (Duration, (String, String)) {
        (self.t0.elapsed(), (self.load_start.clone(), loadavg()))
    }
}

/// The text of `/proc/loadavg` (empty when unreadable).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
}

/// The machine part of a report's `Machine:` line: CPU model, CPU count, the shared-vCPU
/// caveat (`builds` says whether other builds "may run" or "ran" beside it), the load
/// averages of `loads` (`/proc/loadavg` texts at start and end) and the kernel release.
pub fn machine_note(loads: &(String, String), builds: &str) -> String {
    format!(
        "{}; {} CPUs (2 shared vCPUs, noisy: other helpers' builds {builds} beside it; \
         load average at start {}, at end {}); kernel {}",
        sh_out(&[
            "sh",
            "-c",
            "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"
        ]),
        sh_out(&["nproc"]),
        load3(&loads.0),
        load3(&loads.1),
        sh_out(&["uname", "-r"]),
    )
}

/// Writes `text` to `<target>/bench-reports/<file>` (`CARGO_TARGET_DIR` or the workspace's
/// `target`), prints it and the path, and returns the path.
pub fn write_report(file: &str, text: &str) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("bench-reports");
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let path = dir.canonicalize()?.join(file);
    std::fs::write(&path, text).with_context(|| format!("{}", path.display()))?;
    println!("{text}");
    println!("(written to {})", path.display());
    Ok(path)
}

/// Ends a bench's `main` on the outcome of its run: on an error, prints
/// `<name> failed: <error chain>` and exits with status 1.
pub fn exit_on_error(name: &str, outcome: anyhow::Result<()>) {
    if let Err(e) = outcome {
        eprintln!("{name} failed: {e:#}");
        std::process::exit(1);
    }
}

/// Sends SIGTERM to `pid` (`kill -TERM`); whether `kill` succeeded.
pub fn sigterm(pid: u32) -> std::io::Result<bool> {
    Ok(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?
        .success())
}

/// A process under measurement with its output in a log file, killed on drop (a failing
/// run leaves nothing behind).
pub struct BenchChild {
    child: Option<Child>,
    log: PathBuf,
    what: &'static str,
    spawned_at: Instant,
}

impl BenchChild {
    /// Spawns `cmd` with stdin closed and stdout and stderr to a new file `log`; `what`
    /// names the process in errors.
    pub fn spawn(cmd: &mut Command, log: PathBuf, what: &'static str) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let spawned_at = Instant::now();
        let child = cmd.spawn().with_context(|| format!("spawn {what}"))?;
        Ok(BenchChild {
            child: Some(child),
            log,
            what,
            spawned_at,
        })
    }

    /// The instant just before the process was spawned.
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// The process id (0 once taken).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// An error with the last five log lines if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            anyhow::bail!("{} exited ({st}); last log lines: {tail:?}", self.what);
        }
        Ok(())
    }

    /// Takes the process out of the guard (to stop it); `None` when already taken.
    pub fn take(&mut self) -> Option<Child> {
        self.child.take()
    }
}

impl Drop for BenchChild {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// glibc tunable of the benches' diagnostic run (`MALLOC_ARENA_MAX=1`: one malloc arena).
pub const DIAG_ENV: &str = "MALLOC_ARENA_MAX";

/// The Markdown section of the one-malloc-arena diagnostic run at scale `n` of the
/// `process` binary: the explanation, then a table with one row `(measure, default median,
/// diagnostic value)` each, one decimal.
pub fn arena_diag_section(n: usize, process: &str, rows: &[(&str, f64, f64)]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## Diagnostic: one malloc arena\n\nOne more run at N = {n} with \
         `{DIAG_ENV}=1` in the {process}'s environment (glibc then serves every thread from \
         one heap; not a product setting, it only shows how much of the resident set is \
         per-thread arenas rather than live data). One run, so no spread.\n"
    );
    let _ = writeln!(s, "| measure | default (median) | `{DIAG_ENV}=1` |");
    let _ = writeln!(s, "|---|---|---|");
    for (what, a, b) in rows {
        let _ = writeln!(s, "| {what} | {a:.1} | {b:.1} |");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_table() {
        type Stats = Option<(f64, f64, f64)>;
        let cases: [(&[f64], Stats); 5] = [
            (&[], None),
            (&[4.0], Some((4.0, 4.0, 4.0))),
            (&[3.0, 1.0, 2.0], Some((2.0, 1.0, 3.0))),
            (&[4.0, 1.0, 3.0, 2.0], Some((2.5, 1.0, 4.0))),
            (&[-1.0, 10.0], Some((4.5, -1.0, 10.0))),
        ];
        for (v, want) in cases {
            assert_eq!(stats(v), want, "{v:?}");
        }
    }

    #[test]
    fn median_of_empty_is_nan() {
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[5.0, 1.0, 9.0]), 5.0);
    }

    #[test]
    fn fmt_stats_table() {
        let cases: [(&[f64], usize, &str); 4] = [
            (&[], 1, "n/a"),
            (&[1.0, 2.0, 4.0], 0, "**2** [1..4]"),
            (&[1.5, 2.5], 1, "**2.0** [1.5..2.5]"),
            (&[0.0123], 3, "**0.012** [0.012..0.012]"),
        ];
        for (v, digits, want) in cases {
            assert_eq!(fmt_stats(v, digits), want, "{v:?} {digits}");
        }
    }

    #[test]
    fn load3_table() {
        let cases = [
            ("0.52 0.41 0.30 2/345 6789\n", "0.52 0.41 0.30"),
            ("1.0 2.0", "1.0 2.0"),
            ("", ""),
        ];
        for (s, want) in cases {
            assert_eq!(load3(s), want, "{s:?}");
        }
    }

    #[test]
    fn parse_status_kib_table() {
        let full = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n";
        let cases = [
            (full, Some((4096, 5120))),
            ("VmRSS:\t 1 kB\n", None),
            ("VmRSS:\t x kB\nVmHWM:\t 2 kB\n", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_status_kib(s), want, "{s:?}");
        }
    }

    #[test]
    fn arena_diag_section_rows() {
        let s = arena_diag_section(10, "speaker", &[("VmRSS (MiB)", 12.34, 5.0)]);
        assert!(s.starts_with("\n## Diagnostic: one malloc arena\n"), "{s}");
        assert!(
            s.contains("N = 10 with `MALLOC_ARENA_MAX=1` in the speaker's"),
            "{s}"
        );
        assert!(
            s.ends_with("|---|---|---|\n| VmRSS (MiB) | 12.3 | 5.0 |\n"),
            "{s}"
        );
    }

    #[test]
    fn wait_until_passes_and_times_out() {
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            n += 1;
            n >= 3
        }));
        assert!(!wait_until(Duration::from_millis(30), || false));
    }
}
