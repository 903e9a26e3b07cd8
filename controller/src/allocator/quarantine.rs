//! Bounded FIFO of recently released addresses of one pool and family.
//!
//! An address whose last user left enters the quarantine, tagged with that user and a
//! logical sequence number (no clock). The allocator hands quarantined addresses to other
//! Services only when the pool has no other free address, oldest first; the previous user
//! may take its own back at any time. When more than `cap` addresses are quarantined the
//! oldest one leaves and becomes an ordinary free address again. Every operation is
//! O(log q) for q quarantined addresses.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::types::ServiceKey;

/// One pool-and-family quarantine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Quarantine {
    /// Sequence number -> address, oldest first.
    order: BTreeMap<u64, IpAddr>,
    /// Address -> (sequence number, previous user).
    by_ip: HashMap<IpAddr, (u64, ServiceKey)>,
}

impl Quarantine {
    /// Number of quarantined addresses.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// True if `ip` is quarantined here.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.by_ip.contains_key(&ip)
    }

    /// The previous user of a quarantined address.
    pub(crate) fn owner(&self, ip: IpAddr) -> Option<&ServiceKey> {
        self.by_ip.get(&ip).map(|(_, k)| k)
    }

    /// Adds `ip` released by `owner` with sequence number `seq`; if that makes more than
    /// `cap` entries, removes and returns the oldest one (to go back to the free set).
    pub(crate) fn push(
        &mut self,
        ip: IpAddr,
        owner: ServiceKey,
        seq: u64,
        cap: usize,
    ) -> Option<(IpAddr, ServiceKey)> {
        self.order.insert(seq, ip);
        self.by_ip.insert(ip, (seq, owner));
        if self.order.len() > cap {
            let (_, oldest) = self.order.pop_first()?;
            let (_, who) = self.by_ip.remove(&oldest)?;
            return Some((oldest, who));
        }
        None
    }

    /// Removes `ip`; returns its previous user if it was quarantined.
    pub(crate) fn take(&mut self, ip: IpAddr) -> Option<ServiceKey> {
        let (seq, owner) = self.by_ip.remove(&ip)?;
        self.order.remove(&seq);
        Some(owner)
    }

    /// The oldest quarantined address.
    pub(crate) fn oldest(&self) -> Option<IpAddr> {
        self.order.first_key_value().map(|(_, ip)| *ip)
    }

    /// Every entry as (sequence number, address, previous user), oldest first.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u64, IpAddr, &ServiceKey)> + '_ {
        self.order.iter().filter_map(|(&seq, &ip)| {
            let (_, owner) = self.by_ip.get(&ip)?;
            Some((seq, ip, owner))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn fifo_bounded_and_take() {
        let a = ServiceKey::new("ns", "a");
        let b = ServiceKey::new("ns", "b");
        let mut q = Quarantine::default();
        assert_eq!(q.push(ip("10.0.0.1"), a.clone(), 1, 2), None);
        assert_eq!(q.push(ip("10.0.0.2"), b.clone(), 2, 2), None);
        assert_eq!(q.oldest(), Some(ip("10.0.0.1")));
        // Third entry evicts the oldest.
        assert_eq!(
            q.push(ip("10.0.0.3"), a.clone(), 3, 2),
            Some((ip("10.0.0.1"), a.clone()))
        );
        assert_eq!(q.len(), 2);
        assert!(!q.contains(ip("10.0.0.1")));
        assert_eq!(q.owner(ip("10.0.0.2")), Some(&b));
        assert_eq!(q.take(ip("10.0.0.2")), Some(b));
        assert_eq!(q.take(ip("10.0.0.2")), None);
        assert_eq!(q.oldest(), Some(ip("10.0.0.3")));
        let all: Vec<_> = q.entries().map(|(s, i, _)| (s, i)).collect();
        assert_eq!(all, vec![(3, ip("10.0.0.3"))]);
        // Capacity 0: everything goes straight back.
        let mut z = Quarantine::default();
        assert_eq!(
            z.push(ip("fc00::1"), a.clone(), 9, 0),
            Some((ip("fc00::1"), a))
        );
        assert_eq!(z.len(), 0);
    }
}
