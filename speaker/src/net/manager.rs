//! The session manager: owns the listeners, one task per BGP peer and the BFD
//! hub, and applies peer and route changes without disturbing sessions whose
//! configuration did not change.
//!
//! All sockets are created by tasks the manager spawns on the runtime it was
//! started on, so a manager started inside a network namespace (e.g. on a
//! thread that entered it with `setns`) keeps all its sockets there.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::bfd::{BfdHub, BfdRxStats, BfdSessionHandle};
use super::config::{ManagerConfig, PeerConfig, RouteTarget, TtlPolicy};
use super::peer::{PeerCmd, PeerTask, Shared};
use super::sockopt;
use super::status::{PeerStatus, SessionEvent, StatusMap};
use crate::bfd::packet::SessionState as BfdState;
use crate::bgp::codec::{Notification, err};
use crate::bgp::update::RouteSet;

/// Errors of the session manager API.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// A peer configuration is invalid; nothing was applied.
    #[error("invalid peer configuration: {0}")]
    InvalidPeer(String),
    /// Two peers share an id or an address.
    #[error("duplicate peer {0}")]
    DuplicatePeer(String),
    /// The manager task has stopped.
    #[error("the session manager has stopped")]
    Stopped,
}

const EVENT_CAPACITY: usize = 1024;

enum Cmd {
    SetPeers(Vec<PeerConfig>, oneshot::Sender<Result<(), NetError>>),
    SetRoutes(RouteTarget, Arc<RouteSet>),
    Incoming(TcpStream, SocketAddr),
    BfdStats(oneshot::Sender<BfdRxStats>),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the session manager task; cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionManager {
    cmd: mpsc::Sender<Cmd>,
    status: watch::Receiver<StatusMap>,
    events: broadcast::Sender<SessionEvent>,
    listen: Vec<SocketAddr>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cmd::SetPeers(..) => "SetPeers",
            Cmd::SetRoutes(..) => "SetRoutes",
            Cmd::Incoming(..) => "Incoming",
            Cmd::BfdStats(..) => "BfdStats",
            Cmd::Shutdown(..) => "Shutdown",
        })
    }
}

struct PeerEntry {
    cfg: PeerConfig,
    cmd: mpsc::Sender<PeerCmd>,
    routes: watch::Sender<Arc<RouteSet>>,
    bfd_state: watch::Sender<Option<BfdState>>,
    bfd: Option<BfdSessionHandle>,
    task: JoinHandle<()>,
}

struct Actor {
    shared: Arc<Shared>,
    cmd_tx: mpsc::WeakSender<Cmd>,
    listeners: Vec<Arc<TcpListener>>,
    accept_tasks: Vec<JoinHandle<()>>,
    peers: BTreeMap<String, PeerEntry>,
    default_routes: Arc<RouteSet>,
    peer_routes: BTreeMap<String, Arc<RouteSet>>,
    bfd: BfdHub,
}

impl SessionManager {
    /// Opens the listeners and starts the manager task on the current tokio
    /// runtime (must be called from within one).
    pub fn start(cfg: ManagerConfig) -> Result<Self, NetError> {
        let mut listeners = Vec::new();
        let mut listen = Vec::new();
        if let Some(port) = cfg.listen_port {
            for (on, v6) in [(cfg.listen_v4, false), (cfg.listen_v6, true)] {
                if !on {
                    continue;
                }
                let addr = if v6 {
                    SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port)
                } else {
                    SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port)
                };
                let l = super::conn::listen(v6, port)
                    .map_err(|source| NetError::Listen { addr, source })?;
                listen.push(l.local_addr().unwrap_or(addr));
                listeners.push(Arc::new(l));
            }
        }
        let (status_tx, status) = watch::channel(StatusMap::new());
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (cmd, cmd_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            status: status_tx,
            events: events.clone(),
        });
        let mut actor = Actor {
            shared,
            cmd_tx: cmd.downgrade(),
            listeners,
            accept_tasks: Vec::new(),
            peers: BTreeMap::new(),
            default_routes: Arc::new(RouteSet::new()),
            peer_routes: BTreeMap::new(),
            bfd: BfdHub::new(),
        };
        actor.start_accepting();
        tokio::spawn(actor.run(cmd_rx));
        Ok(Self {
            cmd,
            status,
            events,
            listen,
        })
    }

    /// The addresses the listeners are bound to.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen
    }

    /// Replaces the peer set: new peers start, removed peers get a Cease
    /// (Peer De-configured), changed peers restart with a Cease (Other
    /// Configuration Change); unchanged peers keep their sessions. A change
    /// of only the BFD settings restarts only the BFD session.
    pub async fn set_peers(&self, peers: Vec<PeerConfig>) -> Result<(), NetError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::SetPeers(peers, tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Sets the desired Adj-RIB-Out of one peer or of all peers; sessions send
    /// the difference to what they advertised.
    pub async fn set_routes(&self, target: RouteTarget, routes: RouteSet) -> Result<(), NetError> {
        self.set_shared_routes(target, Arc::new(routes)).await
    }

    /// [`SessionManager::set_routes`] with a set the caller keeps too (no copy is made).
    pub async fn set_shared_routes(
        &self,
        target: RouteTarget,
        routes: Arc<RouteSet>,
    ) -> Result<(), NetError> {
        self.cmd
            .send(Cmd::SetRoutes(target, routes))
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// A receiver of status snapshots (all peers by id).
    pub fn status(&self) -> watch::Receiver<StatusMap> {
        self.status.clone()
    }

    /// The current status of one peer.
    pub fn peer_status(&self, id: &str) -> Option<PeerStatus> {
        self.status.borrow().get(id).cloned()
    }

    /// Subscribes to session events (a lagging subscriber loses the oldest).
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// Counters of the BFD receive path.
    pub async fn bfd_stats(&self) -> Result<BfdRxStats, NetError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::BfdStats(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Stops every session (Cease, Administrative Shutdown) and the listeners.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl Actor {
    fn start_accepting(&mut self) {
        for l in &self.listeners {
            let l = l.clone();
            let cmd = self.cmd_tx.clone();
            self.accept_tasks.push(tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, addr)) => {
                            let Some(cmd) = cmd.upgrade() else { return };
                            if cmd.send(Cmd::Incoming(s, addr)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    }
                }
            }));
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Cmd::SetPeers(peers, reply) => {
                    let _ = reply.send(self.set_peers(peers));
                }
                Cmd::SetRoutes(target, routes) => self.set_routes(target, routes),
                Cmd::Incoming(s, addr) => self.incoming(s, addr),
                Cmd::BfdStats(reply) => {
                    let _ = reply.send(self.bfd.stats());
                }
                Cmd::Shutdown(reply) => {
                    self.shutdown().await;
                    let _ = reply.send(());
                    return;
                }
            }
        }
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        for t in self.accept_tasks.drain(..) {
            t.abort();
        }
        let ids: Vec<String> = self.peers.keys().cloned().collect();
        let mut tasks = Vec::new();
        for id in ids {
            if let Some(t) = self.remove_peer(&id, err::CEASE_ADMIN_SHUTDOWN) {
                tasks.push(t);
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    fn routes_for(&self, id: &str) -> Arc<RouteSet> {
        self.peer_routes
            .get(id)
            .cloned()
            .unwrap_or_else(|| self.default_routes.clone())
    }

    fn set_routes(&mut self, target: RouteTarget, routes: Arc<RouteSet>) {
        match target {
            RouteTarget::All => {
                self.default_routes = routes;
                self.peer_routes.clear();
                for p in self.peers.values() {
                    p.routes.send_replace(self.default_routes.clone());
                }
            }
            RouteTarget::Peer(id) => {
                if let Some(p) = self.peers.get(&id) {
                    p.routes.send_replace(routes.clone());
                }
                self.peer_routes.insert(id, routes);
            }
        }
    }

    fn incoming(&mut self, s: TcpStream, addr: SocketAddr) {
        let ip = canonical(addr.ip());
        match self.peers.values().find(|p| p.cfg.peer_address == ip) {
            Some(p) => {
                if p.cmd.try_send(PeerCmd::Incoming(s)).is_err() {
                    tracing::debug!(%addr, "peer task busy; connection dropped");
                }
            }
            None => tracing::debug!(%addr, "connection from an unknown address dropped"),
        }
    }

    fn set_md5(&self, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
        for l in &self.listeners {
            if l.local_addr().map(|a| a.is_ipv6()).unwrap_or(false) == peer.is_ipv6() {
                sockopt::set_tcp_md5(l.as_ref(), peer, key)?;
            }
        }
        Ok(())
    }

    /// Stops a peer's task (it sends `subcode` as a Cease) and forgets it.
    fn remove_peer(&mut self, id: &str, subcode: u8) -> Option<JoinHandle<()>> {
        let p = self.peers.remove(id)?;
        if p.cfg.password.is_some()
            && let Err(e) = self.set_md5(p.cfg.peer_address, None)
        {
            tracing::warn!(peer = %id, error = %e, "removing the TCP-MD5 key");
        }
        let _ = p.cmd.try_send(PeerCmd::Stop(Notification::cease(subcode)));
        drop(p.bfd);
        self.shared.status.send_modify(|m| {
            m.remove(id);
        });
        Some(p.task)
    }

    fn set_peers(&mut self, peers: Vec<PeerConfig>) -> Result<(), NetError> {
        let mut ids = std::collections::BTreeSet::new();
        let mut addrs = std::collections::BTreeSet::new();
        for p in &peers {
            p.validate().map_err(NetError::InvalidPeer)?;
            if !ids.insert(p.id.clone()) {
                return Err(NetError::DuplicatePeer(p.id.clone()));
            }
            if !addrs.insert(p.peer_address) {
                return Err(NetError::DuplicatePeer(format!(
                    "{} (address {} used twice)",
                    p.id, p.peer_address
                )));
            }
        }
        let existing: Vec<String> = self.peers.keys().cloned().collect();
        for id in existing {
            match peers.iter().find(|p| p.id == id) {
                None => {
                    self.remove_peer(&id, err::CEASE_PEER_DECONFIGURED);
                }
                Some(new) => {
                    let old = &self.peers[&id].cfg;
                    if old.bgp_part() != new.bgp_part() {
                        // Cease subcode 6: Other Configuration Change (RFC 4486).
                        self.remove_peer(&id, 6);
                    }
                }
            }
        }
        for cfg in peers {
            if let Some(entry) = self.peers.get_mut(&cfg.id) {
                if entry.cfg.bfd != cfg.bfd {
                    entry.bfd = None;
                    entry.bfd_state.send_replace(None);
                    entry.cfg.bfd = cfg.bfd;
                    let id = cfg.id.clone();
                    self.start_bfd(&id);
                }
                continue;
            }
            self.add_peer(cfg);
        }
        self.update_listener_min_ttl();
        Ok(())
    }

    /// GTSM on the listeners: when every peer of a family uses GTSM, the
    /// listener itself drops segments with TTL < 255, so nothing gets in
    /// before the accepted socket is set up (accepted sockets inherit it).
    /// Otherwise only accepted sockets of GTSM peers enforce it, from accept on.
    fn update_listener_min_ttl(&self) {
        for l in &self.listeners {
            let v6 = l.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
            let mut fam = self
                .peers
                .values()
                .filter(|p| p.cfg.peer_address.is_ipv6() == v6)
                .peekable();
            let all_gtsm =
                fam.peek().is_some() && fam.all(|p| p.cfg.ttl_policy() == TtlPolicy::Gtsm);
            let min = if all_gtsm { 255 } else { 0 };
            if let Err(e) = sockopt::set_min_ttl(l.as_ref(), v6, min) {
                tracing::warn!(error = %e, "setting the listener's minimum TTL");
            }
        }
    }

    fn start_bfd(&mut self, id: &str) {
        let Some(entry) = self.peers.get_mut(id) else {
            return;
        };
        let Some(bfd_cfg) = entry.cfg.bfd else {
            return;
        };
        match self.bfd.start_session(
            id,
            entry.cfg.peer_address,
            entry.cfg.source_address,
            bfd_cfg,
            entry.bfd_state.clone(),
            self.shared.clone(),
        ) {
            Ok(h) => entry.bfd = Some(h),
            Err(e) => {
                tracing::warn!(peer = %id, error = %e, "cannot start BFD");
                self.shared
                    .update(id, |s| s.last_error = Some(format!("BFD: {e}")));
            }
        }
    }

    fn add_peer(&mut self, cfg: PeerConfig) {
        let id = cfg.id.clone();
        if let Some(pw) = &cfg.password
            && let Err(e) = self.set_md5(cfg.peer_address, Some(pw.as_bytes()))
        {
            tracing::warn!(peer = %id, error = %e, "setting the TCP-MD5 key on the listener");
        }
        self.shared.status.send_modify(|m| {
            m.insert(
                id.clone(),
                PeerStatus::new(&id, cfg.peer_address, cfg.bfd.is_some()),
            );
        });
        let (cmd, cmd_rx) = mpsc::channel(8);
        let (routes, routes_rx) = watch::channel(self.routes_for(&id));
        let (bfd_state, bfd_rx) = watch::channel(None);
        let task = PeerTask::new(cfg.clone(), self.shared.clone(), cmd_rx, routes_rx, bfd_rx);
        let task = tokio::spawn(task.run());
        self.peers.insert(
            id.clone(),
            PeerEntry {
                cfg,
                cmd,
                routes,
                bfd_state,
                bfd: None,
                task,
            },
        );
        self.start_bfd(&id);
    }
}
