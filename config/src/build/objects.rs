//! The per-kind rules and the cross-object rules, in dependency order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ferrolb_crds::{BGPAdvertisement, BGPPeer, IPAddressPool};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::adapt;
use super::duration::parse_duration;
use super::overlap::{Overlap, Span, find_overlaps, selector_lists_may_overlap};
use super::{BuildOptions, Resources, labels_of};
use crate::error::{ConfigError, ObjectErrors};
use crate::ipset::{Family, IpRange, addr_from_key, addr_key, parse_pool_entry};
use crate::model::{
    AnySelector, BfdProfile, BgpAdvertisement, Community, Config, DEFAULT_CONNECT_TIME,
    DEFAULT_HOLD_TIME, DEFAULT_KEEPALIVE_TIME, L2Advertisement as L2Model, Md5Password, Peer,
    PeerAsn, PreferredNode,
};
use crate::pool::{PoolPolicy, ServiceAllocation};

const POOL: &str = "IPAddressPool";
const PEER: &str = "BGPPeer";
const BFD: &str = "BFDProfile";
const COMMUNITY: &str = "Community";
const BGP_ADV: &str = "BGPAdvertisement";
const L2_ADV: &str = "L2Advertisement";

/// The secret type a password Secret must have.
const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
/// Most communities one advertisement may carry.
const MAX_COMMUNITIES: usize = 63;

pub(super) fn build_all(
    res: &Resources,
    opts: &BuildOptions,
    errors: &mut Vec<ConfigError>,
) -> Config {
    let nodes: Vec<&BTreeMap<String, String>> = res
        .nodes
        .iter()
        .map(|n| labels_of(&n.metadata.labels))
        .collect();
    let ctx = Ctx { opts, nodes };

    let bfd_objs = unique(&res.bfd_profiles, BFD, |o| &o.metadata, opts, errors);
    let community_objs = unique(&res.communities, COMMUNITY, |o| &o.metadata, opts, errors);
    let pool_objs = unique(&res.pools, POOL, |o| &o.metadata, opts, errors);
    let peer_objs = unique(&res.peers, PEER, |o| &o.metadata, opts, errors);
    let bgp_objs = unique(
        &res.bgp_advertisements,
        BGP_ADV,
        |o| &o.metadata,
        opts,
        errors,
    );
    let l2_objs = unique(
        &res.l2_advertisements,
        L2_ADV,
        |o| &o.metadata,
        opts,
        errors,
    );

    let mut config = Config::default();

    // BFD profiles.
    let bfd_names: BTreeSet<&str> = bfd_objs.iter().map(|o| o.name).collect();
    for o in &bfd_objs {
        let mut e = ObjectErrors::new(BFD, &o.namespace, o.name, errors);
        if let Some(p) = bfd_profile(o.name, &o.obj.spec, &mut e) {
            config.bfd_profiles.insert(o.name.to_owned(), p);
        }
    }

    // Community aliases.
    let mut alias_names: BTreeSet<&str> = BTreeSet::new();
    let mut alias_owner: BTreeMap<&str, &str> = BTreeMap::new();
    for o in &community_objs {
        let mut e = ObjectErrors::new(COMMUNITY, &o.namespace, o.name, errors);
        let mut seen_here: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, alias) in o.obj.spec.communities.iter().enumerate() {
            let field = format!("spec.communities[{i}]");
            let name = alias.name.as_str();
            alias_names.insert(name);
            let mut ok = true;
            if name.is_empty() || name.contains(':') {
                e.push(
                    format!("{field}.name"),
                    "alias name must be non-empty and contain no ':'",
                );
                ok = false;
            }
            if let Some(first) = seen_here.get(name) {
                e.push(
                    format!("{field}.name"),
                    format!("duplicate alias `{name}`: also defined at spec.communities[{first}]"),
                );
                ok = false;
            } else if let Some(owner) = alias_owner.get(name) {
                e.push(
                    format!("{field}.name"),
                    format!("duplicate alias `{name}`: already defined by Community {owner}"),
                );
                ok = false;
            }
            let value = match alias.value.parse::<Community>() {
                Ok(v) => Some(v),
                Err(reason) => {
                    e.push(format!("{field}.value"), reason);
                    None
                }
            };
            seen_here.entry(name).or_insert(i);
            alias_owner.entry(name).or_insert(o.name);
            if let (true, Some(v)) = (ok, value) {
                config.communities.insert(name.to_owned(), v);
            }
        }
    }

    // Pools.
    let pool_names: BTreeSet<&str> = pool_objs.iter().map(|o| o.name).collect();
    let mut pool_info: BTreeMap<&str, PoolInfo<'_>> = BTreeMap::new();
    let mut spans = Vec::new();
    let mut pool_entries: Vec<Vec<Option<IpRange>>> = Vec::with_capacity(pool_objs.len());
    let mut policies: Vec<Option<PoolPolicy>> = Vec::with_capacity(pool_objs.len());
    for (index, o) in pool_objs.iter().enumerate() {
        let mut e = ObjectErrors::new(POOL, &o.namespace, o.name, errors);
        let (entries, policy) = pool(o.obj, &mut e);
        policies.push(policy);
        for (entry, range) in entries.iter().enumerate() {
            if let Some(r) = range {
                let (start, end) = (addr_key(r.start()), addr_key(r.end()));
                spans.push(Span {
                    family: r.family(),
                    start,
                    end,
                    owner: index,
                    entry,
                });
            }
        }
        pool_entries.push(entries);
    }
    let mut overlapping: BTreeSet<usize> = BTreeSet::new();
    for ov in find_overlaps(spans) {
        report_overlap(&ov, &pool_objs, &pool_entries, errors);
        overlapping.insert(ov.first.owner);
        overlapping.insert(ov.second.owner);
    }
    for ((index, o), policy) in pool_objs.iter().enumerate().zip(policies) {
        let entries = &pool_entries[index];
        let Some(policy) = policy else { continue };
        if overlapping.contains(&index) || entries.iter().any(Option::is_none) {
            continue;
        }
        let mut e = ObjectErrors::new(POOL, &o.namespace, o.name, errors);
        let before = e.count();
        let ranges: Vec<IpRange> = entries.iter().flatten().copied().collect();
        let built = adapt::pool(o.name, &ranges, policy, &mut e);
        if let (Some(p), true) = (built, e.count() == before) {
            pool_info.insert(
                o.name,
                PoolInfo {
                    labels: labels_of(&o.obj.metadata.labels),
                    entries: ranges,
                },
            );
            config.pools.insert(o.name.to_owned(), p);
        }
    }

    // Peers.
    let peer_names: BTreeSet<&str> = peer_objs.iter().map(|o| o.name).collect();
    let mut valid_peers: Vec<(&Obj<'_, BGPPeer>, Peer)> = Vec::new();
    for o in &peer_objs {
        let mut e = ObjectErrors::new(PEER, &o.namespace, o.name, errors);
        let before = e.count();
        let peer = peer(
            o.name,
            &o.obj.spec,
            &res.secrets,
            &config,
            &bfd_names,
            &ctx,
            &mut e,
        );
        if let (Some(p), true) = (peer, e.count() == before) {
            valid_peers.push((o, p));
        }
    }
    check_peer_pairs(&valid_peers, &ctx, errors);
    for (_, p) in valid_peers {
        config.peers.insert(p.name.clone(), p);
    }

    // BGP advertisements.
    let mut bgp_valid: Vec<(&Obj<'_, BGPAdvertisement>, BgpAdvertisement)> = Vec::new();
    for o in &bgp_objs {
        let mut e = ObjectErrors::new(BGP_ADV, &o.namespace, o.name, errors);
        let before = e.count();
        let refs = Refs {
            pool_names: &pool_names,
            pool_info: &pool_info,
            peer_names: &peer_names,
            alias_names: &alias_names,
        };
        let adv = bgp_advertisement(o.name, &o.obj.spec, &refs, &config, &ctx, &mut e);
        if let (Some(a), true) = (adv, e.count() == before) {
            bgp_valid.push((o, a));
        }
    }
    check_local_pref(&bgp_valid, &pool_info, &ctx, errors);
    for (_, a) in bgp_valid {
        config.bgp_advertisements.insert(a.name.clone(), a);
    }

    // L2 advertisements.
    for o in &l2_objs {
        let mut e = ObjectErrors::new(L2_ADV, &o.namespace, o.name, errors);
        let before = e.count();
        let adv = l2_advertisement(o.name, &o.obj.spec, &pool_names, &pool_info, &mut e);
        if let (Some(a), true) = (adv, e.count() == before) {
            config.l2_advertisements.insert(a.name.clone(), a);
        }
    }

    config
}

struct Ctx<'a> {
    opts: &'a BuildOptions,
    nodes: Vec<&'a BTreeMap<String, String>>,
}

impl Ctx<'_> {
    /// Whether two node-selector lists can select a common node (see the module docs).
    fn nodes_overlap(
        &self,
        a_raw: &[LabelSelector],
        a: &AnySelector,
        b_raw: &[LabelSelector],
        b: &AnySelector,
    ) -> bool {
        if self.nodes.is_empty() {
            selector_lists_may_overlap(a_raw, b_raw)
        } else {
            self.nodes.iter().any(|l| a.matches(l) && b.matches(l))
        }
    }
}

/// An object that passed the name and namespace checks.
struct Obj<'a, T> {
    name: &'a str,
    namespace: String,
    obj: &'a T,
}

/// Checks names and namespaces; returns the objects sorted by name with duplicates (after
/// the first) reported and dropped.
fn unique<'a, T>(
    items: &'a [T],
    kind: &'static str,
    meta: impl Fn(&T) -> &ObjectMeta,
    opts: &BuildOptions,
    errors: &mut Vec<ConfigError>,
) -> Vec<Obj<'a, T>> {
    let mut out: Vec<Obj<'a, T>> = Vec::with_capacity(items.len());
    for obj in items {
        let m = meta(obj);
        let name = m.name.as_deref().unwrap_or_default();
        let namespace = match m.namespace.as_deref() {
            None | Some("") => opts.namespace.clone(),
            Some(ns) => ns.to_owned(),
        };
        if name.is_empty() {
            errors.push(ConfigError::new(
                kind,
                namespace,
                "",
                "metadata.name",
                "required",
            ));
            continue;
        }
        if namespace != opts.namespace {
            errors.push(ConfigError::new(
                kind,
                namespace.clone(),
                name,
                "metadata.namespace",
                format!("ferrolb objects must be in namespace {}", opts.namespace),
            ));
        }
        out.push(Obj {
            name,
            namespace,
            obj,
        });
    }
    out.sort_by(|a, b| a.name.cmp(b.name));
    let mut deduped: Vec<Obj<'a, T>> = Vec::with_capacity(out.len());
    for o in out {
        if deduped.last().is_some_and(|last| last.name == o.name) {
            errors.push(ConfigError::new(
                kind,
                o.namespace.clone(),
                o.name,
                "metadata.name",
                format!("duplicate name: another {kind} is also named {}", o.name),
            ));
            continue;
        }
        deduped.push(o);
    }
    deduped
}

// ===== selectors =====

/// Compiles a selector list, reporting each invalid selector under `field[i]`.
fn selectors(list: &[LabelSelector], field: &str, e: &mut ObjectErrors<'_>) -> AnySelector {
    let mut out = Vec::with_capacity(list.len());
    for (i, sel) in list.iter().enumerate() {
        let path = format!("{field}[{i}]");
        if let Some(j) = list[..i].iter().position(|other| other == sel) {
            e.push(path.clone(), format!("duplicate of {field}[{j}]"));
        }
        match adapt::selector(sel) {
            Ok(s) => out.push(s),
            Err(problems) => {
                for (suffix, reason) in problems {
                    e.push(format!("{path}{suffix}"), reason);
                }
            }
        }
    }
    AnySelector(out)
}

// ===== BFD =====

fn bfd_profile(
    name: &str,
    spec: &ferrolb_crds::BFDProfileSpec,
    e: &mut ObjectErrors<'_>,
) -> Option<BfdProfile> {
    let before = e.count();
    let interval = |v: u32, field: &str, e: &mut ObjectErrors<'_>| {
        if !(10..=60_000).contains(&v) {
            e.push(
                format!("spec.{field}"),
                format!("{field} must be between 10 and 60000 ms, got {v}"),
            );
        }
        Duration::from_millis(u64::from(v))
    };
    let receive_interval = interval(spec.receive_interval, "receiveInterval", e);
    let transmit_interval = interval(spec.transmit_interval, "transmitInterval", e);
    let echo_interval = interval(spec.echo_interval, "echoInterval", e);
    let detect_multiplier = match u8::try_from(spec.detect_multiplier) {
        Ok(m) if m >= 2 => m,
        _ => {
            e.push(
                "spec.detectMultiplier",
                format!(
                    "detectMultiplier must be between 2 and 255, got {}",
                    spec.detect_multiplier
                ),
            );
            0
        }
    };
    let minimum_ttl = match u8::try_from(spec.minimum_ttl) {
        Ok(t) if (1..=254).contains(&t) => t,
        _ => {
            e.push(
                "spec.minimumTtl",
                format!(
                    "minimumTtl must be between 1 and 254, got {}",
                    spec.minimum_ttl
                ),
            );
            0
        }
    };
    (e.count() == before).then(|| BfdProfile {
        name: name.to_owned(),
        receive_interval,
        transmit_interval,
        detect_multiplier,
        echo_interval,
        echo_mode: spec.echo_mode,
        passive_mode: spec.passive_mode,
        minimum_ttl,
    })
}

// ===== pools =====

struct PoolInfo<'a> {
    labels: &'a BTreeMap<String, String>,
    entries: Vec<IpRange>,
}

/// Single-object pool rules; returns the parsed entries (`None` where invalid) and the
/// policy (`None` when `serviceAllocation` is invalid).
fn pool(
    obj: &IPAddressPool,
    e: &mut ObjectErrors<'_>,
) -> (Vec<Option<IpRange>>, Option<PoolPolicy>) {
    let spec = &obj.spec;
    if spec.addresses.is_empty() {
        e.push("spec.addresses", "at least one address entry is required");
    }
    let entries: Vec<Option<IpRange>> = spec
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| match parse_pool_entry(a) {
            Ok(r) => Some(r),
            Err(err) => {
                e.push(format!("spec.addresses[{i}]"), err.to_string());
                None
            }
        })
        .collect();
    let before = e.count();
    let service_allocation = spec.service_allocation.as_ref().map(|sa| {
        let priority = match sa.priority {
            None => 0,
            Some(p) => u32::try_from(p).unwrap_or_else(|_| {
                e.push(
                    "spec.serviceAllocation.priority",
                    format!("priority must be >= 0, got {p}"),
                );
                0
            }),
        };
        for (i, ns) in sa.namespaces.iter().enumerate() {
            let field = format!("spec.serviceAllocation.namespaces[{i}]");
            if let Err(reason) = check_dns_label(ns) {
                e.push(
                    field.clone(),
                    format!("`{ns}` is not a namespace name: {reason}"),
                );
            }
            if let Some(j) = sa.namespaces[..i].iter().position(|n| n == ns) {
                e.push(
                    field,
                    format!(
                        "duplicate namespace `{ns}` (also spec.serviceAllocation.namespaces[{j}])"
                    ),
                );
            }
        }
        let namespace_selectors = selectors(
            &sa.namespace_selectors,
            "spec.serviceAllocation.namespaceSelectors",
            e,
        );
        let service_selectors = selectors(
            &sa.service_selectors,
            "spec.serviceAllocation.serviceSelectors",
            e,
        );
        ServiceAllocation {
            priority,
            namespaces: sa.namespaces.iter().cloned().collect(),
            namespace_selectors: namespace_selectors.0,
            service_selectors: service_selectors.0,
        }
    });
    let policy = (e.count() == before).then_some(PoolPolicy {
        auto_assign: spec.auto_assign,
        avoid_buggy_ips: spec.avoid_buggy_ips,
        service_allocation,
    });
    (entries, policy)
}

/// RFC 1123 label: 1-63 lowercase alphanumerics or '-', starting and ending alphanumeric.
fn check_dns_label(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    if s.len() > 63 {
        return Err("longer than 63 characters");
    }
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !s.bytes().all(|b| ok_char(b) || b == b'-') {
        return Err("only lowercase letters, digits and '-' are allowed");
    }
    let bytes = s.as_bytes();
    if !ok_char(bytes[0]) || !ok_char(bytes[bytes.len() - 1]) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

fn range_text(family: Family, start: u128, end: u128) -> String {
    match (addr_from_key(family, start), addr_from_key(family, end)) {
        (Some(s), Some(e)) => match IpRange::new(s, e) {
            Ok(r) => r.to_string(),
            Err(_) => format!("{s}-{e}"),
        },
        _ => String::from("?"),
    }
}

fn report_overlap(
    ov: &Overlap,
    objs: &[Obj<'_, IPAddressPool>],
    entries: &[Vec<Option<IpRange>>],
    errors: &mut Vec<ConfigError>,
) {
    let common = range_text(ov.first.family, ov.start, ov.end);
    let text = |s: &Span| {
        entries[s.owner][s.entry]
            .map(|r| r.to_string())
            .unwrap_or_default()
    };
    let (a, b) = (ov.first, ov.second);
    let (oa, ob) = (&objs[a.owner], &objs[b.owner]);
    if a.owner == b.owner {
        let (lo, hi) = if a.entry < b.entry { (a, b) } else { (b, a) };
        errors.push(ConfigError::new(
            POOL,
            oa.namespace.clone(),
            oa.name,
            format!("spec.addresses[{}]", hi.entry),
            format!(
                "{} overlaps spec.addresses[{}] ({}) of the same pool in {common}",
                text(&hi),
                lo.entry,
                text(&lo)
            ),
        ));
        return;
    }
    for (me, my_obj, other, other_obj) in [(a, oa, b, ob), (b, ob, a, oa)] {
        errors.push(ConfigError::new(
            POOL,
            my_obj.namespace.clone(),
            my_obj.name,
            format!("spec.addresses[{}]", me.entry),
            format!(
                "{} overlaps IPAddressPool {} spec.addresses[{}] ({}) in {common}",
                text(&me),
                other_obj.name,
                other.entry,
                text(&other)
            ),
        ));
    }
}

// ===== peers =====

fn whole_seconds(
    raw: &Option<String>,
    field: &str,
    e: &mut ObjectErrors<'_>,
) -> Result<Option<u64>, ()> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match parse_duration(raw) {
        Ok(d) if d.subsec_nanos() != 0 => {
            e.push(
                format!("spec.{field}"),
                format!("{field} `{raw}` must be whole seconds"),
            );
            Err(())
        }
        Ok(d) => Ok(Some(d.as_secs())),
        Err(reason) => {
            e.push(format!("spec.{field}"), reason);
            Err(())
        }
    }
}

fn parse_ip(raw: &str, field: &str, e: &mut ObjectErrors<'_>) -> Option<IpAddr> {
    match raw.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => {
            e.push(field, format!("`{raw}` is the unspecified address"));
            None
        }
        Ok(ip) if ip.is_multicast() => {
            e.push(field, format!("`{raw}` is a multicast address"));
            None
        }
        Ok(ip) => Some(ip),
        Err(_) => {
            e.push(field, format!("`{raw}` is not an IPv4 or IPv6 address"));
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn peer(
    name: &str,
    spec: &ferrolb_crds::BGPPeerSpec,
    secrets: &[Secret],
    config: &Config,
    bfd_names: &BTreeSet<&str>,
    ctx: &Ctx<'_>,
    e: &mut ObjectErrors<'_>,
) -> Option<Peer> {
    let before = e.count();
    if spec.my_asn == 0 {
        e.push(
            "spec.myASN",
            "myASN must be between 1 and 4294967295 (AS 0 is reserved)",
        );
    }
    let peer_asn = match (spec.peer_asn, spec.dynamic_asn) {
        (Some(_), Some(_)) => {
            e.push(
                "spec.dynamicASN",
                "exactly one of peerASN and dynamicASN must be set, both are",
            );
            None
        }
        (None, None) => {
            e.push(
                "spec.peerASN",
                "exactly one of peerASN and dynamicASN must be set, neither is",
            );
            None
        }
        (Some(0), None) => {
            e.push(
                "spec.peerASN",
                "peerASN must be between 1 and 4294967295 (AS 0 is reserved)",
            );
            None
        }
        (Some(asn), None) => Some(PeerAsn::Fixed(asn)),
        (None, Some(ferrolb_crds::DynamicAsn::Internal)) => Some(PeerAsn::Internal),
        (None, Some(ferrolb_crds::DynamicAsn::External)) => Some(PeerAsn::External),
    };
    let address = parse_ip(&spec.peer_address, "spec.peerAddress", e);
    let port = match u16::try_from(spec.peer_port) {
        Ok(p) if p >= 1 => p,
        _ => {
            e.push(
                "spec.peerPort",
                format!(
                    "peerPort must be between 1 and 65535, got {}",
                    spec.peer_port
                ),
            );
            0
        }
    };
    let source_address = spec
        .source_address
        .as_deref()
        .and_then(|s| parse_ip(s, "spec.sourceAddress", e));
    if let (Some(a), Some(s)) = (address, source_address)
        && a.is_ipv4() != s.is_ipv4()
    {
        e.push(
            "spec.sourceAddress",
            format!("sourceAddress {s} and peerAddress {a} are of different address families"),
        );
    }

    // Timers.
    let hold = whole_seconds(&spec.hold_time, "holdTime", e);
    let keepalive = whole_seconds(&spec.keepalive_time, "keepaliveTime", e);
    let connect = whole_seconds(&spec.connect_time, "connectTime", e);
    let mut timers = None;
    if let (Ok(hold), Ok(keepalive)) = (hold, keepalive) {
        let mut ok = true;
        if let Some(h) = hold
            && h != 0
            && !(3..=65_535).contains(&h)
        {
            e.push(
                "spec.holdTime",
                format!("holdTime must be 0 or between 3s and 65535s, got {h}s"),
            );
            ok = false;
        }
        if let Some(k) = keepalive
            && k > 65_535
        {
            e.push(
                "spec.keepaliveTime",
                format!("keepaliveTime must be between 0s and 65535s, got {k}s"),
            );
            ok = false;
        }
        if ok {
            let (h, k) = match (hold, keepalive) {
                (None, None) => (
                    DEFAULT_HOLD_TIME.as_secs(),
                    DEFAULT_KEEPALIVE_TIME.as_secs(),
                ),
                (Some(h), None) => (h, h / 3),
                (None, Some(k)) => (k * 3, k),
                (Some(h), Some(k)) => (h, k),
            };
            if h > 65_535 {
                e.push(
                    "spec.keepaliveTime",
                    format!(
                        "without holdTime the hold time is 3 x keepaliveTime = {h}s, above 65535s; \
                         set holdTime"
                    ),
                );
            } else if h == 0 && k != 0 {
                e.push(
                    "spec.keepaliveTime",
                    "keepaliveTime must be 0 when holdTime is 0",
                );
            } else if k > h {
                e.push(
                    "spec.keepaliveTime",
                    format!("keepaliveTime {k}s must be lower than or equal to holdTime {h}s"),
                );
            } else if h != 0 && k == 0 {
                e.push(
                    "spec.keepaliveTime",
                    format!(
                        "keepaliveTime 0 sends no keepalives, so the peer would drop the session \
                         after holdTime {h}s; set holdTime to 0 as well or use a keepalive of at \
                         least 1s"
                    ),
                );
            } else {
                timers = Some((Duration::from_secs(h), Duration::from_secs(k)));
            }
        }
    }
    let connect_time = match connect {
        Ok(None) => Some(DEFAULT_CONNECT_TIME),
        Ok(Some(c)) if (1..=65_535).contains(&c) => Some(Duration::from_secs(c)),
        Ok(Some(c)) => {
            e.push(
                "spec.connectTime",
                format!("connectTime must be between 1s and 65535s, got {c}s"),
            );
            None
        }
        Err(()) => None,
    };

    let router_id = match spec.router_id.as_deref() {
        None => None,
        Some(raw) => match raw.parse::<Ipv4Addr>() {
            Ok(id) if id.is_unspecified() => {
                e.push("spec.routerID", "routerID must not be 0.0.0.0");
                None
            }
            Ok(id) => Some(id),
            Err(_) => {
                e.push(
                    "spec.routerID",
                    format!("routerID `{raw}` must be an IPv4 address"),
                );
                None
            }
        },
    };

    if spec.ebgp_multi_hop
        && let Some(asn) = peer_asn
        && asn.is_ibgp(spec.my_asn)
    {
        e.push(
            "spec.ebgpMultiHop",
            "ebgpMultiHop applies to eBGP sessions only; this session is iBGP",
        );
    }

    let password = spec
        .password_secret
        .as_ref()
        .and_then(|r| password(r, secrets, ctx, e));

    let bfd_profile = match spec.bfd_profile.as_deref() {
        None => None,
        Some(p) => match config.bfd_profiles.get(p) {
            Some(profile) => {
                if profile.echo_mode && address.is_some_and(|a| a.is_ipv6()) {
                    e.push(
                        "spec.bfdProfile",
                        format!(
                            "BFDProfile {p} enables echoMode, which is supported on IPv4 sessions \
                             only; this peer is IPv6"
                        ),
                    );
                }
                Some(profile.clone())
            }
            None if bfd_names.contains(p) => None,
            None if ctx.opts.allow_missing_references => None,
            None => {
                e.push("spec.bfdProfile", format!("no BFDProfile named {p}"));
                None
            }
        },
    };

    let node_selectors = selectors(&spec.node_selectors, "spec.nodeSelectors", e);

    if e.count() != before {
        return None;
    }
    let (hold_time, keepalive_time) = timers?;
    Some(Peer {
        name: name.to_owned(),
        my_asn: spec.my_asn,
        peer_asn: peer_asn?,
        address: address?,
        port,
        source_address,
        hold_time,
        keepalive_time,
        connect_time: connect_time?,
        router_id,
        password,
        ebgp_multi_hop: spec.ebgp_multi_hop,
        bfd_profile,
        graceful_restart: spec.enable_graceful_restart,
        node_selectors,
    })
}

fn password(
    r: &ferrolb_crds::SecretRef,
    secrets: &[Secret],
    ctx: &Ctx<'_>,
    e: &mut ObjectErrors<'_>,
) -> Option<Md5Password> {
    let ns = &ctx.opts.namespace;
    if let Some(other) = r.namespace.as_deref()
        && !other.is_empty()
        && other != ns
    {
        e.push(
            "spec.passwordSecret.namespace",
            format!("the password Secret must be in namespace {ns}, not {other}"),
        );
        return None;
    }
    if r.name.is_empty() {
        e.push("spec.passwordSecret.name", "required");
        return None;
    }
    let found = secrets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(r.name.as_str())
            && s.metadata
                .namespace
                .as_deref()
                .is_none_or(|n| n.is_empty() || n == ns)
    });
    let Some(secret) = found else {
        if !ctx.opts.allow_missing_references {
            e.push(
                "spec.passwordSecret.name",
                format!("Secret {ns}/{} not found", r.name),
            );
        }
        return None;
    };
    let ty = secret.type_.as_deref().unwrap_or("Opaque");
    if ty != BASIC_AUTH {
        e.push(
            "spec.passwordSecret.name",
            format!("Secret {} has type {ty}; it must be {BASIC_AUTH}", r.name),
        );
        return None;
    }
    let key = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|s| s.as_bytes().to_vec())
        .or_else(|| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get("password"))
                .map(|b| b.0.clone())
        });
    let Some(key) = key else {
        e.push(
            "spec.passwordSecret.name",
            format!("Secret {} has no `password` key", r.name),
        );
        return None;
    };
    match Md5Password::new(key) {
        Ok(p) => Some(p),
        Err(reason) => {
            e.push(
                "spec.passwordSecret.name",
                format!("Secret {}: {reason}", r.name),
            );
            None
        }
    }
}

/// Cross-peer rules: no duplicate session and no conflicting myASN towards one address
/// from a common node.
fn check_peer_pairs(
    peers: &[(&Obj<'_, BGPPeer>, Peer)],
    ctx: &Ctx<'_>,
    errors: &mut Vec<ConfigError>,
) {
    let mut by_address: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    for (i, (_, p)) in peers.iter().enumerate() {
        by_address.entry(p.address).or_default().push(i);
    }
    for group in by_address.values() {
        for (n, &j) in group.iter().enumerate() {
            let (oj, pj) = &peers[j];
            for &i in &group[..n] {
                let (oi, pi) = &peers[i];
                if !ctx.nodes_overlap(
                    &oi.obj.spec.node_selectors,
                    &pi.node_selectors,
                    &oj.obj.spec.node_selectors,
                    &pj.node_selectors,
                ) {
                    continue;
                }
                if pi.port == pj.port {
                    errors.push(ConfigError::new(
                        PEER,
                        oj.namespace.clone(),
                        oj.name,
                        "spec.peerAddress",
                        format!(
                            "duplicate session: BGPPeer {} also peers with {} port {} from \
                             overlapping nodes",
                            oi.name, pj.address, pj.port
                        ),
                    ));
                } else if pi.my_asn != pj.my_asn {
                    errors.push(ConfigError::new(
                        PEER,
                        oj.namespace.clone(),
                        oj.name,
                        "spec.myASN",
                        format!(
                            "myASN {} differs from myASN {} of BGPPeer {}, which peers with the \
                             same address {} from overlapping nodes",
                            pj.my_asn, pi.my_asn, oi.name, pj.address
                        ),
                    ));
                }
            }
        }
    }
}

// ===== advertisements =====

struct Refs<'r, 'a> {
    pool_names: &'r BTreeSet<&'a str>,
    pool_info: &'r BTreeMap<&'a str, PoolInfo<'a>>,
    peer_names: &'r BTreeSet<&'a str>,
    alias_names: &'r BTreeSet<&'a str>,
}

/// Resolves `ipAddressPools` + `ipAddressPoolSelectors` (every valid pool when both are
/// empty), reporting unknown names.
fn resolve_pools(
    names: &[String],
    sels: &[LabelSelector],
    pool_names: &BTreeSet<&str>,
    pool_info: &BTreeMap<&str, PoolInfo<'_>>,
    e: &mut ObjectErrors<'_>,
) -> BTreeSet<String> {
    let compiled = selectors(sels, "spec.ipAddressPoolSelectors", e);
    let mut out = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if pool_info.contains_key(name.as_str()) {
            out.insert(name.clone());
        } else if !pool_names.contains(name.as_str()) {
            e.push(
                format!("spec.ipAddressPools[{i}]"),
                format!("no IPAddressPool named {name}"),
            );
        }
    }
    if names.is_empty() && sels.is_empty() {
        out.extend(pool_info.keys().map(|k| (*k).to_owned()));
    } else if !sels.is_empty() {
        for (name, info) in pool_info {
            if compiled.0.iter().any(|s| s.matches(info.labels)) {
                out.insert((*name).to_owned());
            }
        }
    }
    out
}

fn bgp_advertisement(
    name: &str,
    spec: &ferrolb_crds::BGPAdvertisementSpec,
    refs: &Refs<'_, '_>,
    config: &Config,
    ctx: &Ctx<'_>,
    e: &mut ObjectErrors<'_>,
) -> Option<BgpAdvertisement> {
    let agg4 = match u8::try_from(spec.aggregation_length) {
        Ok(l) if (1..=32).contains(&l) => Some(l),
        _ => {
            e.push(
                "spec.aggregationLength",
                format!(
                    "aggregationLength must be between 1 and 32, got {}",
                    spec.aggregation_length
                ),
            );
            None
        }
    };
    let agg6 = match u8::try_from(spec.aggregation_length_v6) {
        Ok(l) if (1..=128).contains(&l) => Some(l),
        _ => {
            e.push(
                "spec.aggregationLengthV6",
                format!(
                    "aggregationLengthV6 must be between 1 and 128, got {}",
                    spec.aggregation_length_v6
                ),
            );
            None
        }
    };
    if !spec.service_selectors.is_empty()
        && (spec.aggregation_length != 32 || spec.aggregation_length_v6 != 128)
    {
        e.push(
            "spec.serviceSelectors",
            "serviceSelectors cannot be combined with aggregated (shorter than host) prefixes",
        );
    }

    // Communities.
    if spec.communities.len() > MAX_COMMUNITIES {
        e.push(
            "spec.communities",
            format!(
                "at most {MAX_COMMUNITIES} communities, got {}",
                spec.communities.len()
            ),
        );
    }
    let mut communities = BTreeSet::new();
    for (i, c) in spec.communities.iter().enumerate() {
        let field = format!("spec.communities[{i}]");
        if c.contains(':') {
            match c.parse::<Community>() {
                Ok(v) => {
                    communities.insert(v);
                }
                Err(reason) => e.push(field, reason),
            }
        } else if let Some(v) = config.communities.get(c) {
            communities.insert(*v);
        } else if refs.alias_names.contains(c.as_str()) || ctx.opts.allow_missing_references {
            // Invalid alias (reported on its Community) or allowed to appear later.
        } else {
            e.push(
                field,
                format!("`{c}` is neither a community value (A:B, large:A:B:C) nor a known Community alias"),
            );
        }
    }

    let pools = resolve_pools(
        &spec.ip_address_pools,
        &spec.ip_address_pool_selectors,
        refs.pool_names,
        refs.pool_info,
        e,
    );

    let mut peers = BTreeSet::new();
    for (i, p) in spec.peers.iter().enumerate() {
        if config.peers.contains_key(p) {
            peers.insert(p.clone());
        } else if !refs.peer_names.contains(p.as_str()) {
            e.push(format!("spec.peers[{i}]"), format!("no BGPPeer named {p}"));
        }
    }
    if spec.peers.is_empty() {
        peers.extend(config.peers.keys().cloned());
    }

    // Aggregation must not be shorter than the prefix of a selected pool's entry.
    for pool_name in &pools {
        let Some(info) = refs.pool_info.get(pool_name.as_str()) else {
            continue;
        };
        for family in Family::ALL {
            let (agg, field) = match family {
                Family::V4 => (agg4, "spec.aggregationLength"),
                Family::V6 => (agg6, "spec.aggregationLengthV6"),
            };
            let Some(agg) = agg else { continue };
            let offending = info
                .entries
                .iter()
                .enumerate()
                .filter(|(_, r)| r.family() == family)
                .find_map(|(i, r)| {
                    let longest_needed = r.to_cidrs().iter().map(|c| c.prefix()).min()?;
                    (longest_needed > agg).then_some((i, r, longest_needed))
                });
            if let Some((i, r, prefix)) = offending {
                e.push(
                    field,
                    format!(
                        "aggregation length /{agg} is shorter than /{prefix} of IPAddressPool \
                         {pool_name} spec.addresses[{i}] ({r}); the aggregate would cover \
                         addresses outside the pool"
                    ),
                );
            }
        }
    }

    let node_selectors = selectors(&spec.node_selectors, "spec.nodeSelectors", e);
    let service_selectors = selectors(&spec.service_selectors, "spec.serviceSelectors", e);

    Some(BgpAdvertisement {
        name: name.to_owned(),
        aggregation_length: agg4?,
        aggregation_length_v6: agg6?,
        local_pref: spec.local_pref,
        communities,
        pools,
        peers,
        node_selectors,
        service_selectors,
        weighted_ecmp: spec.weighted_ecmp,
    })
}

/// Two advertisements setting different LOCAL_PREF for the same prefix, peer and node.
fn check_local_pref(
    ads: &[(&Obj<'_, BGPAdvertisement>, BgpAdvertisement)],
    pool_info: &BTreeMap<&str, PoolInfo<'_>>,
    ctx: &Ctx<'_>,
    errors: &mut Vec<ConfigError>,
) {
    let with_pref: Vec<&(&Obj<'_, BGPAdvertisement>, BgpAdvertisement)> =
        ads.iter().filter(|(_, a)| a.local_pref.is_some()).collect();
    for (n, (oj, aj)) in with_pref.iter().enumerate() {
        for (oi, ai) in &with_pref[..n] {
            if ai.local_pref == aj.local_pref {
                continue;
            }
            let Some(common_peer) = ai.peers.intersection(&aj.peers).next() else {
                continue;
            };
            if !ctx.nodes_overlap(
                &oi.obj.spec.node_selectors,
                &ai.node_selectors,
                &oj.obj.spec.node_selectors,
                &aj.node_selectors,
            ) {
                continue;
            }
            let (si, sj) = (
                &oi.obj.spec.service_selectors,
                &oj.obj.spec.service_selectors,
            );
            if !si.is_empty() && !sj.is_empty() && !selector_lists_may_overlap(si, sj) {
                continue;
            }
            let clash = ai.pools.intersection(&aj.pools).find_map(|pool| {
                let info = pool_info.get(pool.as_str())?;
                let has = |f: Family| info.entries.iter().any(|r| r.family() == f);
                if has(Family::V4) && ai.aggregation_length == aj.aggregation_length {
                    Some((pool, "aggregationLength", ai.aggregation_length))
                } else if has(Family::V6) && ai.aggregation_length_v6 == aj.aggregation_length_v6 {
                    Some((pool, "aggregationLengthV6", ai.aggregation_length_v6))
                } else {
                    None
                }
            });
            if let Some((pool, _, len)) = clash {
                errors.push(ConfigError::new(
                    BGP_ADV,
                    oj.namespace.clone(),
                    oj.name,
                    "spec.localPref",
                    format!(
                        "localPref {} conflicts with localPref {} of BGPAdvertisement {}: both \
                         advertise IPAddressPool {pool} as /{len} prefixes to BGPPeer \
                         {common_peer} from overlapping nodes",
                        aj.local_pref.unwrap_or_default(),
                        ai.local_pref.unwrap_or_default(),
                        oi.name
                    ),
                ));
            }
        }
    }
}

/// Linux interface name rules (`dev_valid_name`): 1-15 bytes, no '/', ':' or whitespace,
/// not `.` or `..`.
fn check_interface(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("interface names are 1 to 15 characters long");
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not interface names");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err("interface names contain no '/', ':' or whitespace");
    }
    Ok(())
}

fn l2_advertisement(
    name: &str,
    spec: &ferrolb_crds::L2AdvertisementSpec,
    pool_names: &BTreeSet<&str>,
    pool_info: &BTreeMap<&str, PoolInfo<'_>>,
    e: &mut ObjectErrors<'_>,
) -> Option<L2Model> {
    let pools = resolve_pools(
        &spec.ip_address_pools,
        &spec.ip_address_pool_selectors,
        pool_names,
        pool_info,
        e,
    );
    let mut interfaces = BTreeSet::new();
    for (i, ifname) in spec.interfaces.iter().enumerate() {
        match check_interface(ifname) {
            Ok(()) => {
                interfaces.insert(ifname.clone());
            }
            Err(reason) => e.push(
                format!("spec.interfaces[{i}]"),
                format!("`{ifname}`: {reason}"),
            ),
        }
    }
    let mut preferred_nodes = Vec::new();
    for (i, p) in spec.preferred_node_selectors.iter().enumerate() {
        let field = format!("spec.preferredNodeSelectors[{i}]");
        let weight = match u8::try_from(p.weight) {
            Ok(w) if (1..=100).contains(&w) => Some(w),
            _ => {
                e.push(
                    format!("{field}.weight"),
                    format!("weight must be between 1 and 100, got {}", p.weight),
                );
                None
            }
        };
        let selector = match adapt::selector(&p.preference) {
            Ok(s) => Some(s),
            Err(problems) => {
                for (suffix, reason) in problems {
                    e.push(format!("{field}.preference{suffix}"), reason);
                }
                None
            }
        };
        if let (Some(weight), Some(selector)) = (weight, selector) {
            preferred_nodes.push(PreferredNode { weight, selector });
        }
    }
    let node_selectors = selectors(&spec.node_selectors, "spec.nodeSelectors", e);
    let service_selectors = selectors(&spec.service_selectors, "spec.serviceSelectors", e);
    Some(L2Model {
        name: name.to_owned(),
        pools,
        node_selectors,
        interfaces,
        service_selectors,
        preferred_nodes,
    })
}
