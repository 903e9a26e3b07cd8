//! Exact sets of IP addresses stored as merged intervals, never as enumerated addresses.
//!
//! Addresses of one [`Family`] map to `u128` keys (IPv4 into the low 32 bits). An
//! [`IntervalSet`] keeps disjoint, non-adjacent inclusive intervals in a `BTreeMap`, so
//! membership, insertion, removal and "next free address" lookups cost O(log n) in the
//! number of intervals whatever the number of addresses. Sizes use [`AddrCount`], which is
//! exact up to and beyond 2^128 (the size of `::/0`). [`parse_pool_entry`] parses the
//! `addresses` entries of an IPAddressPool with precise error reasons.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Add, AddAssign, Bound};
use std::str::FromStr;

use ipnetwork::IpNetwork;

// ===== Family =====

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4: 32-bit addresses.
    V4,
    /// IPv6: 128-bit addresses.
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits: 32 or 128.
    pub const fn bits(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The other family.
    pub const fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// The Kubernetes spelling used in `spec.ipFamilies`: `"IPv4"` or `"IPv6"`.
    pub const fn as_k8s_str(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// Parses the Kubernetes spelling (`"IPv4"`, `"IPv6"`, case-sensitive).
    pub fn from_k8s_str(s: &str) -> Option<Family> {
        match s {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        }
    }

    /// Largest key of this family: `u32::MAX` for IPv4, `u128::MAX` for IPv6.
    pub const fn max_key(self) -> u128 {
        match self {
            Family::V4 => u32::MAX as u128,
            Family::V6 => u128::MAX,
        }
    }

    /// Number of addresses in the whole family: 2^32 or 2^128.
    pub fn size(self) -> AddrCount {
        AddrCount::pow2(self.bits())
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_k8s_str())
    }
}

/// The `u128` key of an address: the IPv4 value in the low 32 bits, or the IPv6 value.
///
/// Keys are ordered like the addresses within one family.
pub fn addr_key(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of `family` with key `key`, or `None` if `key` is beyond the family
/// (above `u32::MAX` for IPv4).
pub fn addr_from_key(family: Family, key: u128) -> Option<IpAddr> {
    match family {
        Family::V4 => u32::try_from(key)
            .ok()
            .map(|k| IpAddr::V4(Ipv4Addr::from(k))),
        Family::V6 => Some(IpAddr::V6(Ipv6Addr::from(key))),
    }
}

/// Converts a key known to be inside `family` (internal invariant of the types here).
fn key_addr(family: Family, key: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(key as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(key)),
    }
}

/// The address after `addr` in its family, or `None` at the family's last address.
pub fn next_addr(addr: IpAddr) -> Option<IpAddr> {
    let family = Family::of(addr);
    let key = addr_key(addr);
    if key == family.max_key() {
        None
    } else {
        Some(key_addr(family, key + 1))
    }
}

/// The address before `addr` in its family, or `None` at the family's first address.
pub fn prev_addr(addr: IpAddr) -> Option<IpAddr> {
    let family = Family::of(addr);
    addr_key(addr)
        .checked_sub(1)
        .map(|key| key_addr(family, key))
}

// ===== AddrCount =====

/// An exact count of addresses, from 0 up to 2^256 - 1.
///
/// One family holds at most 2^128 addresses (`::/0`), one more than `u128::MAX`, and
/// status totals add counts together, so the count is two `u128` limbs
/// (`hi * 2^128 + lo`). It never saturates in practice: exceeding the range would need
/// more than 2^128 whole IPv6 spaces. Displays and serialises as a decimal string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrCount {
    // Field order matters: the derived ordering compares `hi` first.
    hi: u128,
    lo: u128,
}

impl AddrCount {
    /// Zero addresses.
    pub const ZERO: AddrCount = AddrCount { hi: 0, lo: 0 };
    /// One address.
    pub const ONE: AddrCount = AddrCount { hi: 0, lo: 1 };
    /// The largest representable count, 2^256 - 1.
    pub const MAX: AddrCount = AddrCount {
        hi: u128::MAX,
        lo: u128::MAX,
    };

    /// The count `n`.
    pub const fn from_u128(n: u128) -> AddrCount {
        AddrCount { hi: 0, lo: n }
    }

    /// 2^`bits`; `bits` of 256 or more give [`AddrCount::MAX`]. `pow2(128)` is the size of
    /// `::/0`, `pow2(32)` the size of `0.0.0.0/0`.
    pub const fn pow2(bits: u32) -> AddrCount {
        if bits < 128 {
            AddrCount {
                hi: 0,
                lo: 1u128 << bits,
            }
        } else if bits < 256 {
            AddrCount {
                hi: 1u128 << (bits - 128),
                lo: 0,
            }
        } else {
            AddrCount::MAX
        }
    }

    /// Number of keys in the inclusive interval `start..=end` (`start <= end`), which may be
    /// 2^128.
    pub(crate) fn span(start: u128, end: u128) -> AddrCount {
        debug_assert!(start <= end);
        let diff = end - start;
        match diff.checked_add(1) {
            Some(n) => AddrCount::from_u128(n),
            None => AddrCount::pow2(128),
        }
    }

    /// True for zero.
    pub const fn is_zero(self) -> bool {
        self.hi == 0 && self.lo == 0
    }

    /// The count as a `u128`, or `None` if it is 2^128 or more.
    pub const fn to_u128(self) -> Option<u128> {
        if self.hi == 0 { Some(self.lo) } else { None }
    }

    /// The count as a `u64`, or `None` if it does not fit.
    pub fn to_u64(self) -> Option<u64> {
        self.to_u128().and_then(|n| u64::try_from(n).ok())
    }

    /// `self + rhs`, or `None` above 2^256 - 1.
    pub const fn checked_add(self, rhs: AddrCount) -> Option<AddrCount> {
        let (lo, carry) = self.lo.overflowing_add(rhs.lo);
        let Some(hi) = self.hi.checked_add(rhs.hi) else {
            return None;
        };
        let Some(hi) = hi.checked_add(carry as u128) else {
            return None;
        };
        Some(AddrCount { hi, lo })
    }

    /// `self - rhs`, or `None` if `rhs > self`.
    pub const fn checked_sub(self, rhs: AddrCount) -> Option<AddrCount> {
        let (lo, borrow) = self.lo.overflowing_sub(rhs.lo);
        let Some(hi) = self.hi.checked_sub(rhs.hi) else {
            return None;
        };
        let Some(hi) = hi.checked_sub(borrow as u128) else {
            return None;
        };
        Some(AddrCount { hi, lo })
    }

    /// `self - rhs`, clamped at zero.
    pub fn saturating_sub(self, rhs: AddrCount) -> AddrCount {
        self.checked_sub(rhs).unwrap_or(AddrCount::ZERO)
    }

    /// Four 64-bit limbs, most significant first.
    fn limbs(self) -> [u64; 4] {
        [
            (self.hi >> 64) as u64,
            self.hi as u64,
            (self.lo >> 64) as u64,
            self.lo as u64,
        ]
    }

    fn from_limbs(l: [u64; 4]) -> AddrCount {
        AddrCount {
            hi: (u128::from(l[0]) << 64) | u128::from(l[1]),
            lo: (u128::from(l[2]) << 64) | u128::from(l[3]),
        }
    }

    /// Divides by a small divisor, returning quotient and remainder.
    fn div_rem_small(self, d: u64) -> (AddrCount, u64) {
        let mut q = [0u64; 4];
        let mut rem: u128 = 0;
        for (i, limb) in self.limbs().into_iter().enumerate() {
            let cur = (rem << 64) | u128::from(limb);
            q[i] = (cur / u128::from(d)) as u64;
            rem = cur % u128::from(d);
        }
        (AddrCount::from_limbs(q), rem as u64)
    }

    /// `self * m + a`, or `None` on overflow.
    fn mul_add_small(self, m: u64, a: u64) -> Option<AddrCount> {
        let mut out = [0u64; 4];
        let mut carry: u128 = u128::from(a);
        let limbs = self.limbs();
        for i in (0..4).rev() {
            let cur = u128::from(limbs[i]) * u128::from(m) + carry;
            out[i] = cur as u64;
            carry = cur >> 64;
        }
        if carry == 0 {
            Some(AddrCount::from_limbs(out))
        } else {
            None
        }
    }
}

impl From<u128> for AddrCount {
    fn from(n: u128) -> AddrCount {
        AddrCount::from_u128(n)
    }
}

impl From<u64> for AddrCount {
    fn from(n: u64) -> AddrCount {
        AddrCount::from_u128(u128::from(n))
    }
}

impl From<u32> for AddrCount {
    fn from(n: u32) -> AddrCount {
        AddrCount::from_u128(u128::from(n))
    }
}

impl Add for AddrCount {
    type Output = AddrCount;

    /// Exact sum. A sum above 2^256 - 1 (unreachable with real address sets) is clamped to
    /// [`AddrCount::MAX`] rather than panicking; use [`AddrCount::checked_add`] to detect it.
    fn add(self, rhs: AddrCount) -> AddrCount {
        self.checked_add(rhs).unwrap_or(AddrCount::MAX)
    }
}

impl AddAssign for AddrCount {
    fn add_assign(&mut self, rhs: AddrCount) {
        *self = *self + rhs;
    }
}

impl std::iter::Sum for AddrCount {
    fn sum<I: Iterator<Item = AddrCount>>(iter: I) -> AddrCount {
        iter.fold(AddrCount::ZERO, Add::add)
    }
}

impl fmt::Display for AddrCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CHUNK: u64 = 10_000_000_000_000_000_000; // 10^19 < 2^64
        if let Some(n) = self.to_u128() {
            return fmt::Display::fmt(&n, f);
        }
        let mut chunks = Vec::new();
        let mut rest = *self;
        while !rest.is_zero() {
            let (q, r) = rest.div_rem_small(CHUNK);
            chunks.push(r);
            rest = q;
        }
        let mut s = String::new();
        for (i, chunk) in chunks.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&chunk.to_string());
            } else {
                s.push_str(&format!("{chunk:019}"));
            }
        }
        f.pad(&s)
    }
}

/// Error parsing an [`AddrCount`] from a decimal string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a decimal count from 0 to 2^256-1")]
pub struct ParseCountError(pub String);

impl FromStr for AddrCount {
    type Err = ParseCountError;

    /// Parses plain ASCII decimal digits (no sign, no separators).
    fn from_str(s: &str) -> Result<AddrCount, ParseCountError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseCountError(s.to_owned()));
        }
        let mut n = AddrCount::ZERO;
        for b in s.bytes() {
            n = n
                .mul_add_small(10, u64::from(b - b'0'))
                .ok_or_else(|| ParseCountError(s.to_owned()))?;
        }
        Ok(n)
    }
}

impl serde::Serialize for AddrCount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AddrCount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<AddrCount, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = AddrCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal address count as a string or unsigned integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AddrCount, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AddrCount, E> {
                Ok(AddrCount::from(v))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<AddrCount, E> {
                Ok(AddrCount::from(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

// ===== IpRange =====

/// Why two addresses do not form an [`IpRange`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The ends are of different families.
    #[error("range {start}-{end} mixes {} and {}", Family::of(*.start), Family::of(*.end))]
    MixedFamilies {
        /// First address.
        start: IpAddr,
        /// Last address.
        end: IpAddr,
    },
    /// The start is after the end.
    #[error("range {start}-{end} is reversed: {start} is greater than {end}")]
    Reversed {
        /// First address.
        start: IpAddr,
        /// Last address.
        end: IpAddr,
    },
}

/// An inclusive range of addresses of one family, `start <= end`.
///
/// Displays as a CIDR when it is exactly one (`10.0.0.0/24`), otherwise as `start-end`;
/// [`parse_pool_entry`] reads both forms back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRange {
    start: IpAddr,
    end: IpAddr,
}

impl IpRange {
    /// The range `start..=end`; both must be of one family and `start <= end`.
    pub fn new(start: IpAddr, end: IpAddr) -> Result<IpRange, RangeError> {
        if Family::of(start) != Family::of(end) {
            return Err(RangeError::MixedFamilies { start, end });
        }
        if addr_key(start) > addr_key(end) {
            return Err(RangeError::Reversed { start, end });
        }
        Ok(IpRange { start, end })
    }

    /// The one-address range `addr..=addr`.
    pub fn single(addr: IpAddr) -> IpRange {
        IpRange {
            start: addr,
            end: addr,
        }
    }

    /// Every address of `family` (`0.0.0.0/0` or `::/0`).
    pub fn full(family: Family) -> IpRange {
        IpRange {
            start: key_addr(family, 0),
            end: key_addr(family, family.max_key()),
        }
    }

    /// The addresses of a network, from its network address to its broadcast address
    /// (host bits of `net.ip()` are ignored).
    pub fn from_network(net: IpNetwork) -> IpRange {
        IpRange {
            start: net.network(),
            end: net.broadcast(),
        }
    }

    /// Builds from keys of `family` (internal: keys are known to be valid and ordered).
    fn from_keys(family: Family, start: u128, end: u128) -> IpRange {
        IpRange {
            start: key_addr(family, start),
            end: key_addr(family, end),
        }
    }

    fn keys(&self) -> (u128, u128) {
        (addr_key(self.start), addr_key(self.end))
    }

    /// First address.
    pub fn start(&self) -> IpAddr {
        self.start
    }

    /// Last address (inclusive).
    pub fn end(&self) -> IpAddr {
        self.end
    }

    /// Family of both ends.
    pub fn family(&self) -> Family {
        Family::of(self.start)
    }

    /// Exact number of addresses (2^128 for `::/0`).
    pub fn count(&self) -> AddrCount {
        let (s, e) = self.keys();
        AddrCount::span(s, e)
    }

    /// True if `addr` is in the range (always false for the other family).
    pub fn contains(&self, addr: IpAddr) -> bool {
        Family::of(addr) == self.family() && {
            let k = addr_key(addr);
            let (s, e) = self.keys();
            s <= k && k <= e
        }
    }

    /// The addresses in both ranges, if any (`None` for different families).
    pub fn intersection(&self, other: &IpRange) -> Option<IpRange> {
        if self.family() != other.family() {
            return None;
        }
        let (s1, e1) = self.keys();
        let (s2, e2) = other.keys();
        let (s, e) = (s1.max(s2), e1.min(e2));
        (s <= e).then(|| IpRange::from_keys(self.family(), s, e))
    }

    /// True if the ranges share at least one address.
    pub fn overlaps(&self, other: &IpRange) -> bool {
        self.intersection(other).is_some()
    }

    /// Splits into the addresses below `at` and the addresses at or above `at`; either part
    /// is `None` when empty. An `at` of the other family leaves the range whole on the side
    /// given by the family order (IPv4 sorts before IPv6).
    pub fn split_at(&self, at: IpAddr) -> (Option<IpRange>, Option<IpRange>) {
        match Family::of(at).cmp(&self.family()) {
            Ordering::Less => return (None, Some(*self)),
            Ordering::Greater => return (Some(*self), None),
            Ordering::Equal => {}
        }
        let family = self.family();
        let (s, e) = self.keys();
        let k = addr_key(at);
        if k <= s {
            (None, Some(*self))
        } else if k > e {
            (Some(*self), None)
        } else {
            (
                Some(IpRange::from_keys(family, s, k - 1)),
                Some(IpRange::from_keys(family, k, e)),
            )
        }
    }

    /// The range as a single CIDR, if it is exactly one.
    pub fn as_cidr(&self) -> Option<IpNetwork> {
        let cidrs = self.to_cidrs();
        match cidrs.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The smallest list of CIDRs covering exactly this range, in ascending order
    /// (`10.0.0.1-10.0.0.6` gives `10.0.0.1/32, 10.0.0.2/31, 10.0.0.4/31, 10.0.0.6/32`).
    pub fn to_cidrs(&self) -> Vec<IpNetwork> {
        let family = self.family();
        let bits = family.bits();
        let (mut s, e) = self.keys();
        let mut out = Vec::new();
        loop {
            let span = e - s; // number of addresses minus one
            // Largest block size 2^k with 2^k - 1 <= span.
            let fit = match span.checked_add(1) {
                Some(n) => 127 - n.leading_zeros(),
                None => 128,
            };
            let align = if s == 0 { 128 } else { s.trailing_zeros() };
            let k = fit.min(align).min(bits);
            let prefix = (bits - k) as u8;
            if let Ok(net) = IpNetwork::new(key_addr(family, s), prefix) {
                out.push(net);
            } else {
                debug_assert!(false, "prefix {prefix} invalid for {family}");
            }
            let size_minus_one = if k == 128 {
                u128::MAX
            } else {
                (1u128 << k) - 1
            };
            match s.checked_add(size_minus_one) {
                Some(last) if last < e => s = last + 1,
                _ => break,
            }
        }
        out
    }
}

impl From<IpAddr> for IpRange {
    fn from(addr: IpAddr) -> IpRange {
        IpRange::single(addr)
    }
}

impl From<IpNetwork> for IpRange {
    fn from(net: IpNetwork) -> IpRange {
        IpRange::from_network(net)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_cidr() {
            Some(net) => write!(f, "{}/{}", net.network(), net.prefix()),
            None => write!(f, "{}-{}", self.start, self.end),
        }
    }
}

// ===== pool entry parsing =====

/// Why an IPAddressPool `addresses` entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The entry is empty or only whitespace.
    #[error("empty address entry; expected a CIDR (10.0.0.0/24) or a range (10.0.0.1-10.0.0.9)")]
    Empty,
    /// The entry is neither a CIDR nor a range.
    #[error(
        "`{input}` is not a CIDR (10.0.0.0/24) or a range (10.0.0.1-10.0.0.9) of IPv4 or IPv6 addresses"
    )]
    Garbage {
        /// The entry as written.
        input: String,
    },
    /// A part that should be an address is not one.
    #[error("`{part}` in `{input}` is not a valid IPv4 or IPv6 address")]
    InvalidAddress {
        /// The entry as written.
        input: String,
        /// The offending part.
        part: String,
    },
    /// A lone address without a prefix length.
    #[error("`{input}` is a single address without a prefix length; write it as `{suggestion}`")]
    BareAddress {
        /// The entry as written.
        input: String,
        /// The same address as a one-address CIDR.
        suggestion: String,
    },
    /// The prefix length is not a plain decimal number.
    #[error("prefix length `{prefix}` in `{input}` is not a decimal number")]
    InvalidPrefix {
        /// The entry as written.
        input: String,
        /// The text after `/`.
        prefix: String,
    },
    /// The prefix length exceeds the address width.
    #[error("prefix length /{prefix} in `{input}` is too long: {family} allows at most /{max}")]
    PrefixTooLong {
        /// The entry as written.
        input: String,
        /// The prefix length given.
        prefix: u32,
        /// The longest valid prefix length (32 or 128).
        max: u32,
        /// Family of the address.
        family: Family,
    },
    /// The CIDR's address has host bits set.
    #[error("`{input}` has host bits set; the network is `{canonical}`")]
    NonCanonical {
        /// The entry as written.
        input: String,
        /// The canonical form, e.g. `10.0.0.0/24`.
        canonical: String,
    },
    /// A range whose start is after its end.
    #[error("range `{input}` is reversed: {start} is greater than {end}")]
    Reversed {
        /// The entry as written.
        input: String,
        /// First address as written.
        start: IpAddr,
        /// Last address as written.
        end: IpAddr,
    },
    /// A range whose ends are of different families.
    #[error("range `{input}` mixes families: {start} is {} but {end} is {}", Family::of(*.start), Family::of(*.end))]
    MixedFamilies {
        /// The entry as written.
        input: String,
        /// First address.
        start: IpAddr,
        /// Last address.
        end: IpAddr,
    },
}

/// Parses one `addresses` entry of an IPAddressPool.
///
/// Accepts a canonical CIDR (`10.0.0.0/24`, `fc00::/64`, `10.0.0.1/32`, `0.0.0.0/0`,
/// `::/0`) or an inclusive range `start-end` of one family (spaces around `-` and around
/// the entry are tolerated). Rejects, with the reason: empty input, non-addresses, bare
/// addresses without a prefix, non-numeric or too long prefix lengths, CIDRs with host bits
/// set (naming the canonical network), reversed ranges and mixed-family ranges.
pub fn parse_pool_entry(input: &str) -> Result<IpRange, AddressError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(AddressError::Empty);
    }
    let owned = || trimmed.to_owned();
    let parse_addr = |part: &str| {
        part.parse::<IpAddr>()
            .map_err(|_| AddressError::InvalidAddress {
                input: owned(),
                part: part.to_owned(),
            })
    };

    if let Some((addr, prefix)) = trimmed.split_once('/') {
        let addr = parse_addr(addr)?;
        let family = Family::of(addr);
        let digits_ok = !prefix.is_empty()
            && prefix.len() <= 3
            && prefix.bytes().all(|b| b.is_ascii_digit())
            && !(prefix.len() > 1 && prefix.starts_with('0'));
        let prefix_len = digits_ok
            .then(|| prefix.parse::<u32>().ok())
            .flatten()
            .ok_or_else(|| AddressError::InvalidPrefix {
                input: owned(),
                prefix: prefix.to_owned(),
            })?;
        if prefix_len > family.bits() {
            return Err(AddressError::PrefixTooLong {
                input: owned(),
                prefix: prefix_len,
                max: family.bits(),
                family,
            });
        }
        // prefix_len <= 128 here, so the cast is lossless and `new` accepts it.
        let net =
            IpNetwork::new(addr, prefix_len as u8).map_err(|_| AddressError::InvalidPrefix {
                input: owned(),
                prefix: prefix.to_owned(),
            })?;
        if net.network() != addr {
            return Err(AddressError::NonCanonical {
                input: owned(),
                canonical: format!("{}/{}", net.network(), prefix_len),
            });
        }
        return Ok(IpRange::from_network(net));
    }

    if let Some((start, end)) = trimmed.split_once('-') {
        let start = parse_addr(start.trim())?;
        let end = parse_addr(end.trim())?;
        return IpRange::new(start, end).map_err(|e| match e {
            RangeError::MixedFamilies { start, end } => AddressError::MixedFamilies {
                input: owned(),
                start,
                end,
            },
            RangeError::Reversed { start, end } => AddressError::Reversed {
                input: owned(),
                start,
                end,
            },
        });
    }

    match trimmed.parse::<IpAddr>() {
        Ok(addr) => Err(AddressError::BareAddress {
            input: owned(),
            suggestion: format!("{addr}/{}", Family::of(addr).bits()),
        }),
        Err(_) => Err(AddressError::Garbage { input: owned() }),
    }
}

// ===== IntervalSet =====

/// An address or range of one family was used with a set of the other family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{found} addresses cannot be used with an {expected} set")]
pub struct FamilyMismatch {
    /// The set's family.
    pub expected: Family,
    /// The family that was passed.
    pub found: Family,
}

/// A set of addresses of one family, stored as disjoint, merged inclusive intervals.
///
/// Invariants: intervals never overlap or touch (adjacent ones are merged), keys stay
/// inside the family, and the cached count equals the number of member addresses. Equal
/// sets therefore compare equal structurally. Point operations cost O(log n) in the number
/// of intervals; whole-set operations are noted on each method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IntervalSet {
    family: Family,
    /// start key -> end key (inclusive).
    map: BTreeMap<u128, u128>,
    count: AddrCount,
}

impl IntervalSet {
    /// An empty set of `family`.
    pub fn new(family: Family) -> IntervalSet {
        IntervalSet {
            family,
            map: BTreeMap::new(),
            count: AddrCount::ZERO,
        }
    }

    /// Every address of `family`.
    pub fn full(family: Family) -> IntervalSet {
        IntervalSet::from_range(IpRange::full(family))
    }

    /// The addresses of one range.
    pub fn from_range(range: IpRange) -> IntervalSet {
        let mut set = IntervalSet::new(range.family());
        let (s, e) = range.keys();
        set.raw_insert(s, e);
        set
    }

    /// The union of `ranges`, all of which must be of `family`.
    pub fn from_ranges<I>(family: Family, ranges: I) -> Result<IntervalSet, FamilyMismatch>
    where
        I: IntoIterator<Item = IpRange>,
    {
        let mut set = IntervalSet::new(family);
        for range in ranges {
            set.insert_range(range)?;
        }
        Ok(set)
    }

    /// The set's family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Exact number of addresses, O(1).
    pub fn count(&self) -> AddrCount {
        self.count
    }

    /// True if the set has no address.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of maximal intervals the set is made of.
    pub fn range_count(&self) -> usize {
        self.map.len()
    }

    fn check(&self, family: Family) -> Result<(), FamilyMismatch> {
        if family == self.family {
            Ok(())
        } else {
            Err(FamilyMismatch {
                expected: self.family,
                found: family,
            })
        }
    }

    /// Adds `range`; returns how many addresses were not already members.
    pub fn insert_range(&mut self, range: IpRange) -> Result<AddrCount, FamilyMismatch> {
        self.check(range.family())?;
        let (s, e) = range.keys();
        Ok(self.raw_insert(s, e))
    }

    /// Adds one address; returns true if it was not already a member.
    pub fn insert(&mut self, addr: IpAddr) -> Result<bool, FamilyMismatch> {
        Ok(!self.insert_range(IpRange::single(addr))?.is_zero())
    }

    /// Removes `range`; returns how many members were removed.
    pub fn remove_range(&mut self, range: IpRange) -> Result<AddrCount, FamilyMismatch> {
        self.check(range.family())?;
        let (s, e) = range.keys();
        Ok(self.raw_remove(s, e))
    }

    /// Removes one address; returns true if it was a member.
    pub fn remove(&mut self, addr: IpAddr) -> Result<bool, FamilyMismatch> {
        Ok(!self.remove_range(IpRange::single(addr))?.is_zero())
    }

    /// True if `addr` is a member (false for the other family).
    pub fn contains(&self, addr: IpAddr) -> bool {
        Family::of(addr) == self.family && self.containing(addr_key(addr)).is_some()
    }

    /// True if every address of `range` is a member.
    pub fn contains_range(&self, range: &IpRange) -> bool {
        if range.family() != self.family {
            return false;
        }
        let (s, e) = range.keys();
        matches!(self.containing(s), Some((_, pe)) if pe >= e)
    }

    /// The maximal interval containing `addr`, if it is a member.
    pub fn range_containing(&self, addr: IpAddr) -> Option<IpRange> {
        if Family::of(addr) != self.family {
            return None;
        }
        self.containing(addr_key(addr))
            .map(|(s, e)| IpRange::from_keys(self.family, s, e))
    }

    /// Lowest member.
    pub fn first(&self) -> Option<IpAddr> {
        self.map
            .first_key_value()
            .map(|(&s, _)| key_addr(self.family, s))
    }

    /// Highest member.
    pub fn last(&self) -> Option<IpAddr> {
        self.map
            .last_key_value()
            .map(|(_, &e)| key_addr(self.family, e))
    }

    /// Lowest member `>= addr`. For an `addr` of the other family: `first()` if IPv4 sorts
    /// before the set's family, otherwise `None`.
    pub fn first_at_or_after(&self, addr: IpAddr) -> Option<IpAddr> {
        match Family::of(addr).cmp(&self.family) {
            Ordering::Less => return self.first(),
            Ordering::Greater => return None,
            Ordering::Equal => {}
        }
        let k = addr_key(addr);
        if self.containing(k).is_some() {
            return Some(addr);
        }
        self.map
            .range(k..)
            .next()
            .map(|(&s, _)| key_addr(self.family, s))
    }

    /// Lowest member `>= addr`, wrapping around to the lowest member of the set when there
    /// is none above: the "next free address after a cursor" lookup.
    pub fn first_at_or_after_wrapping(&self, addr: IpAddr) -> Option<IpAddr> {
        self.first_at_or_after(addr).or_else(|| self.first())
    }

    /// Highest member `<= addr`. For an `addr` of the other family: `last()` if the set's
    /// family sorts before it, otherwise `None`.
    pub fn last_at_or_before(&self, addr: IpAddr) -> Option<IpAddr> {
        match Family::of(addr).cmp(&self.family) {
            Ordering::Greater => return self.last(),
            Ordering::Less => return None,
            Ordering::Equal => {}
        }
        let k = addr_key(addr);
        self.map
            .range(..=k)
            .next_back()
            .map(|(_, &e)| key_addr(self.family, e.min(k)))
    }

    /// The `index`-th member in ascending order (0-based), or `None` if `index >= count()`.
    ///
    /// O(n) in the number of intervals: meant for sets with few intervals such as a pool's
    /// configured addresses (e.g. to turn a hash into a starting cursor), not for
    /// fragmented free sets.
    pub fn nth(&self, index: u128) -> Option<IpAddr> {
        let mut rest = index;
        for (&s, &e) in &self.map {
            let last_offset = e - s;
            if rest <= last_offset {
                return Some(key_addr(self.family, s + rest));
            }
            // rest > last_offset, so last_offset < u128::MAX and this cannot overflow.
            rest -= last_offset + 1;
        }
        None
    }

    /// The maximal intervals, ascending.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = IpRange> + '_ {
        self.map
            .iter()
            .map(|(&s, &e)| IpRange::from_keys(self.family, s, e))
    }

    /// The members `>= addr` as ascending intervals, the first one clipped to start at
    /// `addr`. O(log n) to start, then O(1) per interval. An `addr` of the other family
    /// yields everything or nothing by family order, as [`Self::first_at_or_after`].
    pub fn ranges_from(&self, addr: IpAddr) -> impl Iterator<Item = IpRange> + '_ {
        let family = self.family;
        let (head, lower) = match Family::of(addr).cmp(&family) {
            Ordering::Less => (None, Bound::Unbounded),
            Ordering::Greater => (None, Bound::Excluded(u128::MAX)),
            Ordering::Equal => {
                let k = addr_key(addr);
                match self.containing(k) {
                    Some((s, e)) => (Some(IpRange::from_keys(family, k, e)), Bound::Excluded(s)),
                    None => (None, Bound::Included(k)),
                }
            }
        };
        head.into_iter().chain(
            self.map
                .range((lower, Bound::Unbounded))
                .map(move |(&s, &e)| IpRange::from_keys(family, s, e)),
        )
    }

    /// Addresses in `self` or `other`. O(m log(n + m)) with m the smaller interval count.
    pub fn union(&self, other: &IntervalSet) -> Result<IntervalSet, FamilyMismatch> {
        self.check(other.family)?;
        let (big, small) = if self.map.len() >= other.map.len() {
            (self, other)
        } else {
            (other, self)
        };
        let mut out = big.clone();
        for (&s, &e) in &small.map {
            out.raw_insert(s, e);
        }
        Ok(out)
    }

    /// Adds every address of `other`; returns how many were new.
    pub fn union_with(&mut self, other: &IntervalSet) -> Result<AddrCount, FamilyMismatch> {
        self.check(other.family)?;
        let mut added = AddrCount::ZERO;
        for (&s, &e) in &other.map {
            added += self.raw_insert(s, e);
        }
        Ok(added)
    }

    /// Addresses in both sets; empty for sets of different families.
    /// O(m log n + output) with m the smaller interval count.
    pub fn intersection(&self, other: &IntervalSet) -> IntervalSet {
        let mut out = IntervalSet::new(self.family);
        if other.family != self.family {
            return out;
        }
        let (big, small) = if self.map.len() >= other.map.len() {
            (self, other)
        } else {
            (other, self)
        };
        for (&s, &e) in &small.map {
            for (a, b) in big.overlapping(s, e) {
                out.raw_insert(a, b);
            }
        }
        out
    }

    /// Addresses in `self` but not in `other` (all of `self` for different families).
    /// O(min(n, m) log max(n, m) + output).
    pub fn difference(&self, other: &IntervalSet) -> IntervalSet {
        if other.family != self.family {
            return self.clone();
        }
        if other.map.len() <= self.map.len() {
            let mut out = self.clone();
            for (&s, &e) in &other.map {
                out.raw_remove(s, e);
            }
            return out;
        }
        let mut out = IntervalSet::new(self.family);
        for (&s, &e) in &self.map {
            let mut cur = Some(s);
            for (a, b) in other.overlapping(s, e) {
                if let Some(c) = cur {
                    if a > c {
                        out.raw_insert(c, a - 1);
                    }
                    cur = b.checked_add(1).filter(|&n| n <= e);
                }
            }
            if let Some(c) = cur {
                out.raw_insert(c, e);
            }
        }
        out
    }

    /// Removes every address of `other`; returns how many were removed.
    pub fn subtract(&mut self, other: &IntervalSet) -> AddrCount {
        if other.family != self.family {
            return AddrCount::ZERO;
        }
        let mut removed = AddrCount::ZERO;
        for (&s, &e) in &other.map {
            removed += self.raw_remove(s, e);
        }
        removed
    }

    /// The lowest overlapping stretch of the two sets (the first maximal range of their
    /// intersection), or `None` if they are disjoint or of different families. Meant for
    /// "pools overlap at ..." errors. O(m log n) with m the smaller interval count.
    pub fn overlap(&self, other: &IntervalSet) -> Option<IpRange> {
        if other.family != self.family {
            return None;
        }
        let (big, small) = if self.map.len() >= other.map.len() {
            (self, other)
        } else {
            (other, self)
        };
        // The small set's intervals are disjoint and ascending, so the first one that meets
        // the big set yields the lowest overlap. Pieces of an intersection are separated by
        // a gap of one set or the other, so each piece is already maximal.
        for (&s, &e) in &small.map {
            if let Some((a, b)) = big.overlapping(s, e).next() {
                return Some(IpRange::from_keys(self.family, a, b));
            }
        }
        None
    }

    // ----- key-level internals -----

    /// The interval `(start, end)` containing key `k`.
    fn containing(&self, k: u128) -> Option<(u128, u128)> {
        self.map
            .range(..=k)
            .next_back()
            .filter(|&(_, &e)| e >= k)
            .map(|(&s, &e)| (s, e))
    }

    /// The members within `s..=e`, as ascending clipped intervals.
    fn overlapping(&self, s: u128, e: u128) -> impl Iterator<Item = (u128, u128)> + '_ {
        let (head, lower) = match self.containing(s) {
            Some((ps, pe)) => (Some((s, pe.min(e))), Bound::Excluded(ps)),
            None => (None, Bound::Included(s)),
        };
        head.into_iter().chain(
            self.map
                .range((lower, Bound::Included(e)))
                .map(move |(&a, &b)| (a, b.min(e))),
        )
    }

    /// Inserts keys `s..=e` (`s <= e`, inside the family); returns the number added.
    fn raw_insert(&mut self, s: u128, e: u128) -> AddrCount {
        let mut new_s = s;
        let mut new_e = e;
        let mut absorbed = AddrCount::ZERO;
        // Merge with an interval starting at or before `s` that overlaps or touches it.
        if let Some((&ps, &pe)) = self.map.range(..=s).next_back()
            && pe.checked_add(1).is_none_or(|n| n >= s)
        {
            if pe >= e {
                return AddrCount::ZERO;
            }
            new_s = ps;
            absorbed += AddrCount::span(ps, pe);
            self.map.remove(&ps);
        }
        // Swallow intervals starting inside `s..=e + 1`.
        let limit = e.checked_add(1);
        while let Some((&ns, &ne)) = self.map.range(s..).next() {
            if limit.is_some_and(|l| ns > l) {
                break;
            }
            absorbed += AddrCount::span(ns, ne);
            new_e = new_e.max(ne);
            self.map.remove(&ns);
        }
        self.map.insert(new_s, new_e);
        let added = AddrCount::span(new_s, new_e).saturating_sub(absorbed);
        self.count += added;
        added
    }

    /// Removes keys `s..=e` (`s <= e`); returns the number removed.
    fn raw_remove(&mut self, s: u128, e: u128) -> AddrCount {
        let mut removed = AddrCount::ZERO;
        // An interval starting before `s` that reaches into the removed stretch.
        if let Some((&ps, &pe)) = self.map.range(..s).next_back()
            && pe >= s
        {
            self.map.insert(ps, s - 1);
            if pe > e {
                self.map.insert(e + 1, pe);
                removed = AddrCount::span(s, e);
                self.count = self.count.saturating_sub(removed);
                return removed;
            }
            removed += AddrCount::span(s, pe);
        }
        while let Some((&ns, &ne)) = self.map.range(s..).next() {
            if ns > e {
                break;
            }
            self.map.remove(&ns);
            if ne > e {
                self.map.insert(e + 1, ne);
                removed += AddrCount::span(ns, e);
                break;
            }
            removed += AddrCount::span(ns, ne);
        }
        self.count = self.count.saturating_sub(removed);
        removed
    }
}

impl fmt::Display for IntervalSet {
    /// Comma-separated ranges (`10.0.0.0/24, 10.0.1.5-10.0.1.9`); empty for an empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{range}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn r(s: &str) -> IpRange {
        parse_pool_entry(s).unwrap()
    }

    #[test]
    fn parse_accepts() {
        let cases: &[(&str, &str, &str)] = &[
            ("10.0.0.0/24", "10.0.0.0", "10.0.0.255"),
            ("fc00::/64", "fc00::", "fc00::ffff:ffff:ffff:ffff"),
            ("10.0.0.1/32", "10.0.0.1", "10.0.0.1"),
            ("::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ("0.0.0.0/0", "0.0.0.0", "255.255.255.255"),
            ("fc00::1/128", "fc00::1", "fc00::1"),
            ("10.0.0.1-10.0.0.9", "10.0.0.1", "10.0.0.9"),
            ("10.0.0.1 - 10.0.0.9", "10.0.0.1", "10.0.0.9"),
            ("  10.0.0.1-  10.0.0.1 ", "10.0.0.1", "10.0.0.1"),
            ("fc00::1-fc00::ff", "fc00::1", "fc00::ff"),
            (
                "::ffff:10.0.0.0/120",
                "::ffff:10.0.0.0",
                "::ffff:10.0.0.255",
            ),
        ];
        for (input, start, end) in cases {
            let range = parse_pool_entry(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (range.start(), range.end()),
                (ip(start), ip(end)),
                "{input}"
            );
        }
    }

    #[test]
    fn parse_rejects_with_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty address entry"),
            ("   ", "empty address entry"),
            (
                "10.0.0.0/33",
                "/33 in `10.0.0.0/33` is too long: IPv4 allows at most /32",
            ),
            ("fc00::/129", "IPv6 allows at most /128"),
            ("10.0.0.5/24", "the network is `10.0.0.0/24`"),
            ("fc00::1/64", "the network is `fc00::/64`"),
            (
                "1.2.3.4-1.2.3.1",
                "is reversed: 1.2.3.4 is greater than 1.2.3.1",
            ),
            (
                "10.0.0.1-fc00::1",
                "mixes families: 10.0.0.1 is IPv4 but fc00::1 is IPv6",
            ),
            ("hello", "`hello` is not a CIDR"),
            (
                "10.0.0.256/24",
                "`10.0.0.256` in `10.0.0.256/24` is not a valid",
            ),
            ("10.0.0.0/", "prefix length `` in"),
            ("10.0.0.0/x", "prefix length `x`"),
            ("10.0.0.0/024", "prefix length `024`"),
            ("10.0.0.0/+8", "prefix length `+8`"),
            ("10.0.0.0/24/8", "prefix length `24/8`"),
            ("10.0.0.0/99999999999", "prefix length `99999999999`"),
            ("10.0.0.1", "write it as `10.0.0.1/32`"),
            ("fc00::1", "write it as `fc00::1/128`"),
            ("10.0.0.1-", "`` in `10.0.0.1-` is not a valid"),
            ("10.0.0.1-10.0.0.2-10.0.0.3", "`10.0.0.2-10.0.0.3`"),
            ("fe80::1%eth0/64", "`fe80::1%eth0` in"),
            ("10.0.0.0 /24", "`10.0.0.0 ` in"),
        ];
        for (input, want) in cases {
            let err = parse_pool_entry(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: got `{err}`, want `{want}`");
        }
    }

    #[test]
    fn counts_are_exact() {
        let cases: &[(&str, &str)] = &[
            ("0.0.0.0/0", "4294967296"),
            ("::/0", "340282366920938463463374607431768211456"),
            ("fc00::/64", "18446744073709551616"),
            ("fc00::/48", "1208925819614629174706176"),
            ("10.0.0.0/24", "256"),
            ("10.0.0.1/32", "1"),
            ("10.0.0.1-10.0.0.9", "9"),
        ];
        for (input, want) in cases {
            assert_eq!(r(input).count().to_string(), *want, "{input}");
            assert_eq!(IntervalSet::from_range(r(input)).count().to_string(), *want);
        }
        assert_eq!(r("::/0").count().to_u128(), None);
        assert_eq!(r("::/0").count(), AddrCount::pow2(128));
        assert_eq!(r("0.0.0.0/0").count().to_u128(), Some(1 << 32));
    }

    #[test]
    fn addr_count_arithmetic_and_text() {
        let full6 = AddrCount::pow2(128);
        let full4 = AddrCount::pow2(32);
        let sum = full6 + full4;
        assert_eq!(sum.to_string(), "340282366920938463463374607436063178752");
        assert_eq!(sum.checked_sub(full4), Some(full6));
        assert_eq!(full4.checked_sub(full6), None);
        assert!(sum > full6 && full6 > AddrCount::from_u128(u128::MAX));
        assert_eq!(AddrCount::MAX.checked_add(AddrCount::ONE), None);
        assert_eq!(AddrCount::MAX + AddrCount::ONE, AddrCount::MAX);
        for text in [
            "0",
            "1",
            "340282366920938463463374607431768211455",
            "340282366920938463463374607431768211456",
            "115792089237316195423570985008687907853269984665640564039457584007913129639935",
        ] {
            let n: AddrCount = text.parse().unwrap();
            assert_eq!(n.to_string(), text);
        }
        assert_eq!(
            AddrCount::MAX.to_string().parse::<AddrCount>(),
            Ok(AddrCount::MAX)
        );
        for bad in [
            "",
            "-1",
            "+1",
            "1 ",
            "0x10",
            "115792089237316195423570985008687907853269984665640564039457584007913129639936",
        ] {
            assert!(bad.parse::<AddrCount>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&full6).unwrap();
        assert_eq!(json, "\"340282366920938463463374607431768211456\"");
        assert_eq!(serde_json::from_str::<AddrCount>(&json).unwrap(), full6);
        assert_eq!(
            serde_json::from_str::<AddrCount>("42").unwrap(),
            AddrCount::from(42u32)
        );
        assert_eq!(format!("{:>5}", AddrCount::from(7u32)), "    7");
    }

    #[test]
    fn to_cidrs_minimal() {
        let cases: &[(&str, &[&str])] = &[
            (
                "10.0.0.1-10.0.0.6",
                &["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"],
            ),
            ("10.0.0.0-10.0.1.255", &["10.0.0.0/23"]),
            ("0.0.0.0/0", &["0.0.0.0/0"]),
            ("::/0", &["::/0"]),
            ("::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
            ("255.255.255.255/32", &["255.255.255.255/32"]),
            ("0.0.0.0-255.255.255.254", &[]),
        ];
        for (input, want) in cases {
            let got: Vec<String> = r(input).to_cidrs().iter().map(|n| n.to_string()).collect();
            if want.is_empty() {
                // Full space minus one end: 32 or 128 blocks, one of each size.
                let bits = r(input).family().bits() as usize;
                assert_eq!(got.len(), bits, "{input}: {got:?}");
            } else {
                assert_eq!(got, *want, "{input}");
            }
        }
        assert_eq!(r("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(r("10.0.0.1-10.0.0.6").to_string(), "10.0.0.1-10.0.0.6");
    }

    #[test]
    fn set_basics() {
        let mut set = IntervalSet::new(Family::V4);
        assert_eq!(
            set.insert_range(r("10.0.0.0/24")),
            Ok(AddrCount::from(256u32))
        );
        assert_eq!(
            set.insert_range(r("10.0.1.0/24")),
            Ok(AddrCount::from(256u32))
        );
        assert_eq!(set.range_count(), 1, "adjacent ranges merge");
        assert_eq!(set.insert_range(r("10.0.0.128/25")), Ok(AddrCount::ZERO));
        assert_eq!(set.remove(ip("10.0.0.7")), Ok(true));
        assert_eq!(set.remove(ip("10.0.0.7")), Ok(false));
        assert_eq!(set.count(), AddrCount::from(511u32));
        assert_eq!(set.first_at_or_after(ip("10.0.0.7")), Some(ip("10.0.0.8")));
        assert_eq!(set.first_at_or_after(ip("10.0.2.0")), None);
        assert_eq!(
            set.first_at_or_after_wrapping(ip("10.0.2.0")),
            Some(ip("10.0.0.0"))
        );
        assert_eq!(set.last_at_or_before(ip("10.0.0.7")), Some(ip("10.0.0.6")));
        assert_eq!(set.to_string(), "10.0.0.0-10.0.0.6, 10.0.0.8-10.0.1.255");
        assert!(set.insert(ip("fc00::1")).is_err());
        assert!(!set.contains(ip("fc00::1")));
        let from: Vec<String> = set
            .ranges_from(ip("10.0.0.3"))
            .map(|r| r.to_string())
            .collect();
        assert_eq!(from, ["10.0.0.3-10.0.0.6", "10.0.0.8-10.0.1.255"]);
        let mut other = IntervalSet::from_range(r("10.0.1.250-10.0.3.0"));
        assert_eq!(set.overlap(&other), Some(r("10.0.1.250-10.0.1.255")));
        other.insert_range(r("10.0.0.5/32")).unwrap();
        assert_eq!(set.overlap(&other), Some(r("10.0.0.5/32")));
        let (lo, hi) = r("10.0.0.0/24").split_at(ip("10.0.0.128"));
        assert_eq!((lo, hi), (Some(r("10.0.0.0/25")), Some(r("10.0.0.128/25"))));
    }

    #[test]
    fn full_space_edges() {
        for family in Family::ALL {
            let mut set = IntervalSet::full(family);
            assert_eq!(set.count(), family.size());
            let max = key_addr(family, family.max_key());
            let min = key_addr(family, 0);
            assert_eq!(set.remove(max), Ok(true));
            assert_eq!(set.remove(min), Ok(true));
            assert_eq!(
                set.count().checked_add(AddrCount::from(2u32)),
                Some(family.size())
            );
            assert_eq!(set.insert(max), Ok(true));
            assert_eq!(set.first_at_or_after(max), Some(max));
            assert_eq!(next_addr(max), None);
            assert_eq!(prev_addr(min), None);
            assert_eq!(set.insert(min), Ok(true));
            assert_eq!(set, IntervalSet::full(family));
            assert_eq!(set.range_count(), 1);
        }
    }
}
