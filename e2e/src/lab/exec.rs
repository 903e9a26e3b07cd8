//! Running commands (optionally inside a namespace) with errors that show the command line,
//! exit status, stdout and stderr, and say which package provides a missing program.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::error::{LabError, LabResult};

/// The Debian package providing `program` (by file name), if it is one the lab uses.
pub fn package_of(program: &str) -> Option<&'static str> {
    let name = Path::new(program).file_name()?.to_str()?;
    Some(match name {
        "ip" | "bridge" | "tc" => "iproute2",
        "nft" => "nftables",
        "sysctl" => "procps",
        "ping" => "iputils-ping",
        "zebra" | "bgpd" | "bfdd" | "staticd" | "vtysh" => "frr",
        "bird" | "birdc" => "bird2",
        "gobgpd" | "gobgp" => "gobgpd",
        _ => return None,
    })
}

/// The `apt-get` hint for a missing `program`.
pub fn install_hint(program: &str) -> String {
    match package_of(program) {
        Some(p) => format!("install it with: apt-get install -y {p}"),
        None => format!("install the package providing {program}"),
    }
}

/// Finds `program`: a path is checked as is, a bare name is looked up in `PATH` plus the
/// sbin directories (which a non-login root shell may lack).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Fails with the install hint unless `program` exists.
pub fn require_program(step: &str, program: &str) -> LabResult<PathBuf> {
    find_program(program).ok_or_else(|| {
        LabError::new(
            step,
            format!("{program} not found"),
            Some(install_hint(program)),
        )
    })
}

/// Quotes a command line for error messages.
pub fn render_argv(argv: &[&str]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c))
            {
                (*a).to_string()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn trimmed(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let s = s.trim();
    const MAX: usize = 4000;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}... ({} bytes)", &s[..cut], s.len())
    } else {
        s.to_string()
    }
}

fn describe_failure(argv: &[&str], out: &Output) -> String {
    format!(
        "`{}` failed ({}); stdout: {:?}; stderr: {:?}",
        render_argv(argv),
        out.status,
        trimmed(&out.stdout),
        trimmed(&out.stderr)
    )
}

/// Runs `argv` (program first) with optional stdin; returns stdout on exit status 0.
pub fn run_with_input(step: &str, argv: &[&str], input: Option<&str>) -> LabResult<String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(LabError::new(step, "empty command line", None));
    };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LabError::new(step, format!("{prog} not found"), Some(install_hint(prog)))
        } else {
            LabError::new(
                step,
                format!("cannot start `{}`: {e}", render_argv(argv)),
                None,
            )
        }
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(|e| {
            LabError::new(
                step,
                format!("writing stdin of `{}`: {e}", render_argv(argv)),
                None,
            )
        })?;
    }
    let out = child.wait_with_output().map_err(|e| {
        LabError::new(
            step,
            format!("waiting for `{}`: {e}", render_argv(argv)),
            None,
        )
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut err = LabError::new(step, describe_failure(argv, &out), None);
        if stderr.contains("exec of") && stderr.contains("No such file") {
            let missing = argv.get(4).copied().unwrap_or(prog);
            err = err.with_hint(install_hint(missing));
        } else if stderr.contains("File exists") && argv.contains(&"netns") {
            err = err.with_hint(
                "a namespace or link of that name exists; remove leftovers with cleanup_stale(\"flb-\")",
            );
        }
        Err(err)
    }
}

/// Runs `argv` in the current namespace; returns stdout.
pub fn run(step: &str, argv: &[&str]) -> LabResult<String> {
    run_with_input(step, argv, None)
}

/// Runs `argv` inside namespace `ns` (`ip netns exec <ns> ...`); returns stdout.
pub fn run_in(step: &str, ns: &str, argv: &[&str]) -> LabResult<String> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(argv);
    run_with_input(step, &full, None)
}

/// Feeds `script` to `ip -n <ns> -batch -` (one iproute2 command per line).
pub fn ip_batch(step: &str, ns: &str, script: &str) -> LabResult<()> {
    if script.trim().is_empty() {
        return Ok(());
    }
    run_with_input(step, &["ip", "-n", ns, "-batch", "-"], Some(script))
        .map(|_| ())
        .map_err(|e| LabError {
            detail: format!("{}; batch was:\n{script}", e.detail),
            ..e
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_for_known_programs() {
        let cases = [
            ("/usr/lib/frr/bgpd", Some("frr")),
            ("birdc", Some("bird2")),
            ("nft", Some("nftables")),
            ("gobgpd", Some("gobgpd")),
            ("whatever", None),
        ];
        for (p, want) in cases {
            assert_eq!(package_of(p), want, "{p}");
        }
        assert_eq!(
            install_hint("/x/zebra"),
            "install it with: apt-get install -y frr"
        );
    }

    #[test]
    fn argv_rendering_quotes_what_needs_it() {
        assert_eq!(
            render_argv(&["ip", "-n", "a b", "it's", ""]),
            r"ip -n 'a b' 'it'\''s' ''"
        );
    }

    #[test]
    fn failures_carry_command_and_output() {
        let err = run("probe", &["sh", "-c", "echo out; echo err >&2; exit 3"]).expect_err("fails");
        assert_eq!(err.step, "probe");
        for want in ["sh -c", "exit status: 3", "\"out\"", "\"err\""] {
            assert!(err.detail.contains(want), "{} lacks {want}", err.detail);
        }
        let err = run("probe", &["/nonexistent/bgpd"]).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "step 'probe': /nonexistent/bgpd not found; install it with: apt-get install -y frr"
        );
        assert_eq!(
            run_with_input("cat", &["cat"], Some("x\n")).expect("cat"),
            "x\n"
        );
    }
}
