//! Socket options that neither `socket2` nor `nix` wrap: TCP-MD5 signatures
//! (RFC 2385, `TCP_MD5SIG`) and the GTSM minimum TTL / hop count (RFC 5082,
//! `IP_MINTTL` / `IPV6_MINHOPCOUNT`). The only module with `unsafe` code: each
//! block is one `setsockopt(2)` call on a borrowed, open descriptor.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

/// Longest key `TCP_MD5SIG` accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `struct __kernel_sockaddr_storage`: 128 octets, 8-octet aligned.
#[repr(C, align(8))]
struct SockaddrStorage([u8; 128]);

/// `struct tcp_md5sig` from `<linux/tcp.h>`.
#[repr(C)]
struct TcpMd5Sig {
    addr: SockaddrStorage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

fn sockaddr_storage_for(ip: IpAddr) -> SockaddrStorage {
    let mut bytes = [0u8; 128];
    match ip {
        IpAddr::V4(v4) => {
            bytes[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            // sin_port (2 octets) stays 0, then sin_addr in network order.
            bytes[4..8].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            bytes[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            // sin6_port (2), sin6_flowinfo (4), then sin6_addr.
            bytes[8..24].copy_from_slice(&v6.octets());
        }
    }
    SockaddrStorage(bytes)
}

fn setsockopt_int(fd: &impl AsFd, level: libc::c_int, name: libc::c_int, v: i32) -> io::Result<()> {
    let val: libc::c_int = v;
    // SAFETY: the descriptor is open for the borrow's lifetime; `val` is a live
    // c_int and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            (&val as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Installs (or with `key = None` removes) the TCP-MD5 key for `peer` on a TCP
/// socket. On a listener the key applies to connections accepted from `peer`.
pub fn set_tcp_md5(fd: &impl AsFd, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or(&[]);
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP-MD5 key is {} octets, the maximum is {MD5_MAX_KEY_LEN}",
                key.len()
            ),
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: sockaddr_storage_for(peer),
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: the descriptor is open for the borrow's lifetime; `sig` is a live
    // `struct tcp_md5sig` with the kernel's layout and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&sig as *const TcpMd5Sig).cast(),
            size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the minimum TTL (IPv4, `IP_MINTTL`) or hop limit (IPv6,
/// `IPV6_MINHOPCOUNT`) below which the kernel drops a TCP socket's segments.
pub fn set_min_ttl(fd: &impl AsFd, ipv6: bool, min: u8) -> io::Result<()> {
    if ipv6 {
        setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MINHOPCOUNT,
            i32::from(min),
        )
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MINTTL, i32::from(min))
    }
}
