//! Running Rust code inside a named network namespace from a dedicated thread.
//!
//! `setns(2)` with `CLONE_NEWNET` moves only the calling thread, so the lab spawns a thread,
//! moves it into `/var/run/netns/<ns>` and runs the closure there; sockets created by it stay
//! in that namespace for their whole life, and threads it spawns inherit the namespace.

use std::fs::File;
use std::path::PathBuf;
use std::thread::JoinHandle;

use nix::sched::{CloneFlags, setns};

use super::error::{LabError, LabResult};

/// Path of a named namespace as created by `ip netns add`.
pub fn netns_path(ns: &str) -> PathBuf {
    PathBuf::from("/var/run/netns").join(ns)
}

/// Moves the calling thread into namespace `ns`. Only call it on threads the lab owns.
pub fn enter(ns: &str) -> LabResult<()> {
    let step = format!("enter namespace {ns}");
    let f = File::open(netns_path(ns)).map_err(|e| {
        LabError::new(
            &step,
            format!("open {}: {e}", netns_path(ns).display()),
            Some("is the lab still up?".into()),
        )
    })?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| {
        LabError::new(
            &step,
            format!("setns: {e}"),
            Some("the lab must run as root".into()),
        )
    })
}

/// Spawns a named thread that enters `ns` and runs `f` there.
pub fn spawn_in<T, F>(ns: &str, thread_name: &str, f: F) -> LabResult<JoinHandle<LabResult<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> LabResult<T> + Send + 'static,
{
    let ns_owned = ns.to_string();
    std::thread::Builder::new()
        .name(thread_name.to_string())
        .spawn(move || {
            enter(&ns_owned)?;
            f()
        })
        .map_err(|e| LabError::new(format!("spawn thread in {ns}"), e.to_string(), None))
}

/// Runs `f` inside `ns` on a fresh thread and waits for its result.
pub fn run_in<T, F>(ns: &str, f: F) -> LabResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> LabResult<T> + Send + 'static,
{
    spawn_in(ns, "flb-netns", f)?
        .join()
        .map_err(|_| LabError::new(format!("run code in {ns}"), "the thread panicked", None))?
}
