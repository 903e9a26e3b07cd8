//! Pod test server as a process: `podserver <name> <port>` answers every TCP connection and
//! UDP datagram on `[::]:<port>` with `<name>\n`. Run it in a pod namespace with
//! `ip netns exec <ns> target/debug/examples/podserver pod-1-1 8080`.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(port)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: podserver <name> <port>");
        return std::process::ExitCode::from(2);
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("podserver: port {port:?} is not a number in 0..=65535");
        return std::process::ExitCode::from(2);
    };
    match ferrolb_e2e::lab::pod_server::serve(name, port) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("podserver: serving {name} on port {port}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
