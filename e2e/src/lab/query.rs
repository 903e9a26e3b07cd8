//! Parsers for router state: kernel routes (`ip -j route`), FRR JSON and BIRD's text output.
//! Pure functions over captured output, so they are tested with fixtures.

use std::net::IpAddr;

use serde_json::Value;

use super::error::{LabError, LabResult};

/// The `address` of the first link in `ip -j link show dev X` output.
pub fn link_mac(json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json.trim()).ok()?;
    v.get(0)?["address"].as_str().map(str::to_string)
}

/// The link-layer address of the first usable entry in `ip -j neigh show ...` output
/// (entries in state FAILED or INCOMPLETE, or without `lladdr`, are skipped).
pub fn neighbor_lladdr(json: &str) -> LabResult<Option<String>> {
    const STEP: &str = "parse `ip -j neigh` output";
    if json.trim().is_empty() {
        return Ok(None);
    }
    let v: Value =
        serde_json::from_str(json.trim()).map_err(|e| parse_err(STEP, format!("{e}: {json:?}")))?;
    let arr = v
        .as_array()
        .ok_or_else(|| parse_err(STEP, format!("not a JSON array: {json:?}")))?;
    Ok(arr.iter().find_map(|e| {
        let bad = e["state"].as_array().is_some_and(|s| {
            s.iter()
                .any(|x| matches!(x.as_str(), Some("FAILED" | "INCOMPLETE")))
        });
        if bad {
            None
        } else {
            e["lladdr"].as_str().map(str::to_string)
        }
    }))
}

/// State of one BGP session as seen by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpNeighbor {
    /// The node's address.
    pub address: IpAddr,
    /// Router software's state name (`Established`, `Active`, `Connect`, ...).
    pub state: String,
    /// Whether the session is Established.
    pub established: bool,
}

/// State of one BFD session as seen by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdPeer {
    /// The node's address.
    pub address: IpAddr,
    /// Router software's state name (`up`, `down`, `Init`, ...).
    pub state: String,
    /// Whether the session is Up.
    pub up: bool,
}

fn parse_err(step: &str, detail: impl Into<String>) -> LabError {
    LabError::new(step, detail, None)
}

/// One usable next hop of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nexthop {
    /// Gateway address (a node's global or link-local address).
    pub gateway: IpAddr,
    /// Outgoing interface (on the router: `n<i>` for node `i`).
    pub dev: String,
}

/// Next hops of the routes in `ip -j route show ...` output: the `gateway` and `dev` of
/// single-path routes and of every `nexthops` entry, skipping next hops flagged `dead` or
/// `linkdown`. Sorted and without duplicates.
pub fn route_nexthop_entries(json: &str) -> LabResult<Vec<Nexthop>> {
    const STEP: &str = "parse `ip -j route` output";
    let v: Value =
        serde_json::from_str(json.trim()).map_err(|e| parse_err(STEP, format!("{e}: {json:?}")))?;
    let routes = v
        .as_array()
        .ok_or_else(|| parse_err(STEP, format!("not a JSON array: {json:?}")))?;
    let usable = |o: &Value| -> Option<Nexthop> {
        let dead = o["flags"].as_array().is_some_and(|f| {
            f.iter()
                .any(|x| matches!(x.as_str(), Some("dead" | "linkdown")))
        });
        if dead {
            return None;
        }
        Some(Nexthop {
            gateway: o["gateway"].as_str()?.parse().ok()?,
            dev: o["dev"].as_str().unwrap_or_default().to_string(),
        })
    };
    let mut out: Vec<Nexthop> = Vec::new();
    for r in routes {
        match r["nexthops"].as_array() {
            Some(nhs) => out.extend(nhs.iter().filter_map(usable)),
            None => out.extend(usable(r)),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Gateways of [`route_nexthop_entries`], sorted and without duplicates.
pub fn route_nexthops(json: &str) -> LabResult<Vec<IpAddr>> {
    let mut v: Vec<IpAddr> = route_nexthop_entries(json)?
        .into_iter()
        .map(|n| n.gateway)
        .collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// Sessions in FRR's `show bgp neighbors json` (an object keyed by peer address; dynamic
/// peers may carry a `*` prefix). Peer-group entries and non-address keys are skipped.
pub fn frr_neighbors(json: &str) -> LabResult<Vec<BgpNeighbor>> {
    const STEP: &str = "parse FRR `show bgp neighbors json`";
    let v: Value =
        serde_json::from_str(json.trim()).map_err(|e| parse_err(STEP, format!("{e}: {json:?}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| parse_err(STEP, format!("not a JSON object: {json:?}")))?;
    let mut out: Vec<BgpNeighbor> = obj
        .iter()
        .filter_map(|(k, n)| {
            let address: IpAddr = k.trim_start_matches('*').parse().ok()?;
            let state = n["bgpState"].as_str().unwrap_or("unknown").to_string();
            Some(BgpNeighbor {
                address,
                established: state == "Established",
                state,
            })
        })
        .collect();
    out.sort_by_key(|n| n.address);
    Ok(out)
}

/// Sessions in FRR's `show bfd peers json` (an array of objects with `peer` and `status`).
pub fn frr_bfd_peers(json: &str) -> LabResult<Vec<BfdPeer>> {
    const STEP: &str = "parse FRR `show bfd peers json`";
    let v: Value =
        serde_json::from_str(json.trim()).map_err(|e| parse_err(STEP, format!("{e}: {json:?}")))?;
    let arr = v
        .as_array()
        .ok_or_else(|| parse_err(STEP, format!("not a JSON array: {json:?}")))?;
    let mut out: Vec<BfdPeer> = arr
        .iter()
        .filter_map(|p| {
            let address: IpAddr = p["peer"].as_str()?.parse().ok()?;
            let state = p["status"].as_str().unwrap_or("unknown").to_string();
            Some(BfdPeer {
                address,
                up: state == "up",
                state,
            })
        })
        .collect();
    out.sort_by_key(|p| p.address);
    Ok(out)
}

/// One row of `birdc show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdProtocol {
    /// Protocol name.
    pub name: String,
    /// Protocol type (`BGP`, `Kernel`, ...).
    pub proto: String,
    /// `up`, `start`, `down`, ...
    pub state: String,
    /// Info column (for BGP: `Established`, `Active`, `Connect`, ...), may be empty.
    pub info: String,
}

/// Rows of `birdc show protocols` (the banner and header lines are skipped).
pub fn bird_protocols(text: &str) -> Vec<BirdProtocol> {
    text.lines()
        .filter(|l| !l.starts_with("BIRD ") && !l.starts_with("Name ") && !l.trim().is_empty())
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // name proto table state since-date [since-time] info...
            if cols.len() < 5 {
                return None;
            }
            let rest = &cols[5..];
            // `since` may be one or two columns (date and time); the info is what follows a
            // column that looks like a time or date.
            let info_start = rest
                .iter()
                .position(|c| !c.contains(':') && !c.contains('-'))
                .unwrap_or(rest.len());
            Some(BirdProtocol {
                name: cols[0].to_string(),
                proto: cols[1].to_string(),
                state: cols[3].to_string(),
                info: rest[info_start..]
                    .first()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Sessions in `birdc show bfd sessions` (rows starting with an IP address).
pub fn bird_bfd_sessions(text: &str) -> Vec<BfdPeer> {
    let mut out: Vec<BfdPeer> = text
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let address: IpAddr = cols.first()?.parse().ok()?;
            let state = cols.get(2)?.to_string();
            Some(BfdPeer {
                address,
                up: state == "Up",
                state,
            })
        })
        .collect();
    out.sort_by_key(|p| p.address);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().expect("ip")).collect()
    }

    #[test]
    fn nexthops_from_ip_json() {
        let cases: &[(&str, &[&str])] = &[
            (
                r#"[{"dst":"198.51.100.1","protocol":"bgp","metric":20,"flags":[],"nexthops":[{"gateway":"10.0.2.2","dev":"n2","weight":1,"flags":[]},{"gateway":"10.0.1.2","dev":"n1","weight":1,"flags":[]}]}]"#,
                &["10.0.1.2", "10.0.2.2"],
            ),
            (
                r#"[{"dst":"fd00:5100::1","gateway":"fd00:10:1::2","dev":"n1","protocol":"bgp","flags":[]}]"#,
                &["fd00:10:1::2"],
            ),
            (
                r#"[{"dst":"198.51.100.1","nexthops":[{"gateway":"10.0.1.2","flags":["linkdown"]},{"gateway":"10.0.2.2","flags":[]}]}]"#,
                &["10.0.2.2"],
            ),
            ("[]", &[]),
            (
                "[{\"dst\":\"10.244.1.0/24\",\"dev\":\"n1\",\"flags\":[]}]",
                &[],
            ),
        ];
        for (json, want) in cases {
            assert_eq!(route_nexthops(json).expect("parse"), ips(want), "{json}");
        }
        assert!(route_nexthops("{}").is_err());
        let e = route_nexthop_entries(r#"[{"dst":"fd00:5100::3","nexthops":[{"gateway":"fe80::2","dev":"n2","flags":[]},{"gateway":"fe80::1","dev":"n1","flags":[]}]}]"#)
            .expect("parse");
        assert_eq!(
            e.iter().map(|n| n.dev.as_str()).collect::<Vec<_>>(),
            ["n1", "n2"]
        );
        assert!(route_nexthops("garbage").is_err());
    }

    #[test]
    fn frr_neighbor_and_bfd_json() {
        let n = r#"{"10.0.1.2":{"remoteAs":64513,"bgpState":"Established"},"*fd00:10:1::2":{"bgpState":"Active"},"N4E":{"bgpState":"x"}}"#;
        let got = frr_neighbors(n).expect("parse");
        assert_eq!(got.len(), 2);
        assert!(got[0].established);
        assert_eq!(
            got[1].address,
            "fd00:10:1::2".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(got[1].state, "Active");
        assert!(frr_neighbors("[]").is_err());
        let b = r#"[{"multihop":false,"peer":"10.0.1.2","local":"10.0.1.1","status":"up"},{"peer":"10.0.2.2","status":"down"}]"#;
        let got = frr_bfd_peers(b).expect("parse");
        assert_eq!(got.iter().map(|p| p.up).collect::<Vec<_>>(), [true, false]);
    }

    #[test]
    fn link_and_neighbor_addresses() {
        assert_eq!(
            link_mac(r#"[{"ifindex":2,"ifname":"l2","address":"1a:ce:91:ef:0f:92"}]"#).as_deref(),
            Some("1a:ce:91:ef:0f:92")
        );
        assert_eq!(link_mac("[]"), None);
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"[{"dst":"192.168.50.200","dev":"l2","lladdr":"aa:bb:cc:dd:ee:ff","state":["REACHABLE"]}]"#,
                Some("aa:bb:cc:dd:ee:ff"),
            ),
            (
                r#"[{"dst":"192.168.50.200","dev":"l2","state":["FAILED"]}]"#,
                None,
            ),
            (
                r#"[{"dst":"192.168.50.200","dev":"l2","lladdr":"aa:bb:cc:dd:ee:ff","state":["INCOMPLETE"]}]"#,
                None,
            ),
            ("", None),
            ("[]", None),
        ];
        for (json, want) in cases {
            assert_eq!(
                neighbor_lladdr(json).expect("parse").as_deref(),
                *want,
                "{json}"
            );
        }
        assert!(neighbor_lladdr("{").is_err());
    }

    #[test]
    fn bird_tables() {
        let p = "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\ndevice1    Device     ---        up     01:23:45.678  \nk4         Kernel     master4    up     01:23:45.678  \nn1v4       BGP        ---        up     01:23:46.000  Established   \nn2v6       BGP        ---        start  2026-11-22 01:23:45  Active        Socket: Connection refused\n";
        let got = bird_protocols(p);
        assert_eq!(got.len(), 4);
        assert_eq!(
            (
                got[2].name.as_str(),
                got[2].state.as_str(),
                got[2].info.as_str()
            ),
            ("n1v4", "up", "Established")
        );
        assert_eq!(
            (got[3].name.as_str(), got[3].info.as_str()),
            ("n2v6", "Active")
        );
        assert_eq!(got[0].info, "");
        let b = "BIRD 2.0.12 ready.\nbfd1:\nIP address                Interface  State      Since         Interval  Timeout\n10.0.1.2                  n1         Up         01:23:45.678    0.100    0.300\nfd00:10:2::2              n2         Down       01:23:45.678    1.000    0.000\n";
        let got = bird_bfd_sessions(b);
        assert_eq!(got.len(), 2);
        assert!(got[0].up);
        assert_eq!(got[1].state, "Down");
    }
}
