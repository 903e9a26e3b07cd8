//! Prometheus text exposition of the speaker's sessions ([`render`], pure) and a minimal
//! HTTP/1.1 endpoint serving `/metrics` and `/healthz` ([`serve`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::bfd::packet::SessionState as BfdState;
use crate::bgp::fsm::State;
use crate::net::StatusMap;

/// Agent-level values shown next to the session counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentGauges {
    /// The running configuration is the latest one (the last build succeeded).
    pub config_valid: bool,
    /// A valid configuration has been loaded at least once.
    pub config_loaded: bool,
    /// Reconciliations run.
    pub reconciles: u64,
    /// BFD state transitions per peer.
    pub bfd_transitions: BTreeMap<String, u64>,
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

const STATES: [State; 6] = [
    State::Idle,
    State::Connect,
    State::Active,
    State::OpenSent,
    State::OpenConfirm,
    State::Established,
];

/// Renders the metrics in the Prometheus text format (version 0.0.4).
pub fn render(status: &StatusMap, gauges: &AgentGauges) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, lines: Vec<String>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for l in lines {
            let _ = writeln!(out, "{name}{l}");
        }
    };
    let per_peer = |f: &dyn Fn(&crate::net::PeerStatus) -> u64| -> Vec<String> {
        status
            .values()
            .map(|p| format!("{{peer=\"{}\"}} {}", escape(&p.id), f(p)))
            .collect()
    };
    family(
        "ferrolb_bgp_session_up",
        "gauge",
        "1 when the BGP session is Established.",
        per_peer(&|p| u64::from(p.state == State::Established)),
    );
    family(
        "ferrolb_bgp_session_state",
        "gauge",
        "BGP FSM state of the session (1 for the current state).",
        status
            .values()
            .flat_map(|p| {
                STATES.iter().map(move |s| {
                    format!(
                        "{{peer=\"{}\",state=\"{s:?}\"}} {}",
                        escape(&p.id),
                        u64::from(p.state == *s)
                    )
                })
            })
            .collect(),
    );
    family(
        "ferrolb_bgp_prefixes_advertised",
        "gauge",
        "Prefixes currently advertised to the peer.",
        per_peer(&|p| p.prefixes_advertised as u64),
    );
    family(
        "ferrolb_bgp_established_total",
        "counter",
        "Times the session reached Established.",
        per_peer(&|p| p.established_count),
    );
    family(
        "ferrolb_bgp_updates_sent_total",
        "counter",
        "UPDATE messages sent.",
        per_peer(&|p| p.updates_sent),
    );
    family(
        "ferrolb_bgp_updates_received_total",
        "counter",
        "UPDATE messages received.",
        per_peer(&|p| p.updates_received),
    );
    family(
        "ferrolb_bgp_notifications_sent_total",
        "counter",
        "NOTIFICATION messages sent.",
        per_peer(&|p| p.notifications_sent),
    );
    family(
        "ferrolb_bgp_notifications_received_total",
        "counter",
        "NOTIFICATION messages received.",
        per_peer(&|p| p.notifications_received),
    );
    family(
        "ferrolb_bfd_session_up",
        "gauge",
        "1 when the peer's BFD session is Up (peers with BFD only).",
        status
            .values()
            .filter_map(|p| {
                p.bfd.map(|b| {
                    format!(
                        "{{peer=\"{}\"}} {}",
                        escape(&p.id),
                        u64::from(b == BfdState::Up)
                    )
                })
            })
            .collect(),
    );
    family(
        "ferrolb_bfd_state_transitions_total",
        "counter",
        "BFD session state changes.",
        gauges
            .bfd_transitions
            .iter()
            .map(|(peer, n)| format!("{{peer=\"{}\"}} {n}", escape(peer)))
            .collect(),
    );
    family(
        "ferrolb_config_valid",
        "gauge",
        "1 when the latest configuration built without errors.",
        vec![format!(" {}", u64::from(gauges.config_valid))],
    );
    family(
        "ferrolb_config_loaded",
        "gauge",
        "1 once a valid configuration has been loaded.",
        vec![format!(" {}", u64::from(gauges.config_loaded))],
    );
    family(
        "ferrolb_reconciles_total",
        "counter",
        "Decision runs.",
        vec![format!(" {}", gauges.reconciles)],
    );
    out
}

/// The response to one request line (`GET /path HTTP/1.1`): status line and body.
pub fn respond(request_line: &str, metrics: impl FnOnce() -> String) -> (&'static str, String) {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", metrics()),
        ("GET", "/healthz") => ("200 OK", "ok\n".to_owned()),
        ("GET", _) => ("404 Not Found", "not found\n".to_owned()),
        _ => ("405 Method Not Allowed", "method not allowed\n".to_owned()),
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped; one
/// request per connection.
pub async fn serve<F>(listener: TcpListener, metrics: F)
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                let mut chunk = [0u8; 1024];
                while buf.len() < 8192 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.lines().next().unwrap_or("");
            let (status, body) = respond(line, metrics);
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::net::PeerStatus;

    use super::*;

    #[test]
    fn renders_peers() {
        let mut p = PeerStatus::new("tor\"1", "10.0.1.1".parse().unwrap(), true);
        p.state = State::Established;
        p.prefixes_advertised = 2;
        p.updates_sent = 5;
        p.bfd = Some(BfdState::Up);
        let status = StatusMap::from([(p.id.clone(), p)]);
        let gauges = AgentGauges {
            config_valid: true,
            config_loaded: true,
            reconciles: 7,
            bfd_transitions: BTreeMap::from([("tor\"1".to_owned(), 3)]),
        };
        let text = render(&status, &gauges);
        for want in [
            "ferrolb_bgp_session_up{peer=\"tor\\\"1\"} 1\n",
            "ferrolb_bgp_session_state{peer=\"tor\\\"1\",state=\"Established\"} 1\n",
            "ferrolb_bgp_session_state{peer=\"tor\\\"1\",state=\"Idle\"} 0\n",
            "ferrolb_bgp_prefixes_advertised{peer=\"tor\\\"1\"} 2\n",
            "ferrolb_bgp_updates_sent_total{peer=\"tor\\\"1\"} 5\n",
            "ferrolb_bfd_session_up{peer=\"tor\\\"1\"} 1\n",
            "ferrolb_bfd_state_transitions_total{peer=\"tor\\\"1\"} 3\n",
            "ferrolb_config_valid 1\n",
            "ferrolb_reconciles_total 7\n",
            "# TYPE ferrolb_bgp_updates_sent_total counter\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn respond_table() {
        let table = [
            ("GET /metrics HTTP/1.1", "200 OK", "m"),
            ("GET /metrics?x=1 HTTP/1.1", "200 OK", "m"),
            ("GET /healthz HTTP/1.1", "200 OK", "ok\n"),
            ("GET /other HTTP/1.1", "404 Not Found", "not found\n"),
            (
                "POST /metrics HTTP/1.1",
                "405 Method Not Allowed",
                "method not allowed\n",
            ),
            ("", "405 Method Not Allowed", "method not allowed\n"),
        ];
        for (line, status, body) in table {
            assert_eq!(
                respond(line, || "m".to_owned()),
                (status, body.to_owned()),
                "{line}"
            );
        }
    }
}
