//! Which webhook targets hookline refuses to call (SSRF protection).
//!
//! A hook URL is attacker-controlled input: without these checks anyone with API access could
//! make hookline POST to the database port, the cloud metadata service or an admin panel on
//! the private network. The rules are pure functions here; they are applied twice, when a hook
//! is created or updated, and again on every connect after DNS resolution (see
//! `delivery::http`), so a name that resolves to a public address at create time and to a
//! private one later (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("the URL is not valid: {0}")]
    Invalid(String),
    #[error("only http and https URLs are accepted")]
    Scheme,
    #[error("the URL must not carry credentials")]
    Credentials,
    #[error("the target {0} is a loopback, private, link-local or otherwise non-public address and not in --allowed-targets; allow it there (or every such address with --allow-private-targets)")]
    Private(String),
}

/// IP addresses and CIDR ranges (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`), comma-separated
/// when parsed; an IPv4 address in IPv6 form (`::ffff:a.b.c.d`) matches as IPv4.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRanges(Vec<(IpAddr, u8)>);

impl IpRanges {
    /// One range, `None` if `part` is neither an address nor a CIDR range.
    fn parse_one(part: &str) -> Option<(IpAddr, u8)> {
        let (ip, bits) = match part.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (part, None),
        };
        let written: IpAddr = ip.parse().ok()?;
        let max = if written.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max)?,
        };
        // An IPv4 address written in IPv6 form (`::ffff:a.b.c.d/104`) is kept as IPv4, its
        // prefix length counted within the last 32 bits (at least 96 of the 128).
        match (written, written.to_canonical()) {
            (IpAddr::V6(_), v4 @ IpAddr::V4(_)) => Some((v4, bits.checked_sub(96)?)),
            _ => Some((written, bits)),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(i) & mask
            }
            _ => false,
        })
    }
}

impl std::str::FromStr for IpRanges {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|part| {
                Self::parse_one(part)
                    .ok_or_else(|| format!("'{part}' is not an IP address or CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(IpRanges)
    }
}

/// `--allowed-targets`: the non-public targets hooks may reach, as CIDR ranges (and single
/// addresses) and host names, comma-separated. A name allows every address it resolves to
/// (an internal receiver's DNS is the operator's); `*.internal.example` allows the names
/// under it. Anything else non-public stays refused, at save and after every DNS lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedTargets {
    ranges: IpRanges,
    /// Lowercase, without trailing dots; `*.suffix` for the names under `suffix`.
    names: Vec<String>,
}

impl std::str::FromStr for AllowedTargets {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = AllowedTargets::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(range) = IpRanges::parse_one(part) {
                out.ranges.0.push(range);
                continue;
            }
            let name = part.trim_end_matches('.').to_ascii_lowercase();
            let bare = name.strip_prefix("*.").unwrap_or(&name);
            let valid = !bare.is_empty()
                && bare.len() <= 253
                && bare.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !valid || part.contains('/') {
                return Err(format!(
                    "'{part}' is not an IP address, a CIDR range or a host name"
                ));
            }
            out.names.push(name);
        }
        Ok(out)
    }
}

/// Which non-public targets hooks may reach (SSRF rules, applied at save and after DNS):
/// none by default, every one with `--allow-private-targets` (development), or those
/// `--allowed-targets` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    pub allow_all_private: bool,
    pub allowed: AllowedTargets,
}

impl TargetPolicy {
    /// Every target (`true`) or only public ones (`false`), with nothing listed.
    pub fn all_private(allow: bool) -> Self {
        Self {
            allow_all_private: allow,
            allowed: AllowedTargets::default(),
        }
    }

    /// May a request go to `ip`?
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.allow_all_private || !is_forbidden_ip(ip) || self.allowed.ranges.contains(ip)
    }

    /// Is `host` a name whose every address is allowed (listed, or all are)?
    pub fn allows_name(&self, host: &str) -> bool {
        if self.allow_all_private {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed
            .names
            .iter()
            .any(|n| match n.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                None => *n == host,
            })
    }
}

/// Is `ip` an address that a webhook must never reach (unless private targets are allowed)?
///
/// Refused: unspecified, loopback, private (RFC 1918), shared/CGNAT (100.64/10), link-local
/// (169.254/16, which holds cloud metadata services), multicast, broadcast, benchmarking,
/// documentation and reserved ranges; and their IPv6 counterparts (::1, fc00::/7, fe80::/10,
/// ff00::/8, ...), including IPv4 addresses wrapped in IPv6 (::ffff:a.b.c.d, NAT64, 6to4).
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space / CGNAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// IPv6: the non-public ranges, and every range that embeds an IPv4 address, judged by that
/// address (or refused outright where the embedding is local or deprecated):
///
/// | range | embeds | RFC |
/// |---|---|---|
/// | `::ffff:0:0/96` IPv4-mapped | last 32 bits | 4291 §2.5.5.2 |
/// | `::/96` IPv4-compatible (deprecated) | last 32 bits | 4291 §2.5.5.1 |
/// | `::ffff:0:0:0/96` IPv4-translated (SIIT) | last 32 bits | 2765 §2.1 |
/// | `64:ff9b::/96` NAT64 well-known prefix | last 32 bits | 6052 §2.1 |
/// | `64:ff9b:1::/48` local-use NAT64: refused | | 8215 |
/// | `2002::/16` 6to4 | bits 16–47 | 3056 §2 |
/// | `2001::/32` Teredo: refused (the client address is obfuscated, the relay is anyone's) | | 4380 §4 |
/// | `…:0:5efe:a.b.c.d`, `…:200:5efe:a.b.c.d` ISATAP interface ids | last 32 bits | 5214 §6.1 |
fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let embedded = embedded_v4(&seg);
    if seg[..5] == [0, 0, 0, 0, 0] && (seg[5] == 0xffff || seg[5] == 0) {
        // Mapped, or compatible (which also covers :: and ::1).
        return seg[5] == 0 || is_forbidden_v4(embedded);
    }
    if seg[..4] == [0, 0, 0, 0] && seg[4] == 0xffff && seg[5] == 0 {
        return is_forbidden_v4(embedded); // translated
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_forbidden_v4(embedded); // NAT64
    }
    if (seg[4] & 0xfdff) == 0 && seg[5] == 0x5efe && is_forbidden_v4(embedded) {
        return true; // ISATAP
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation 2001:db8::/32
        || (seg[0] == 0x3fff && seg[1] < 0x1000) // documentation 3fff::/20 (RFC 9637)
        || (seg[0] == 0x2001 && seg[1] == 0) // Teredo
        || (seg[0] == 0x2001 && seg[1] == 2 && seg[2] == 0) // benchmarking 2001:2::/48
        || (seg[0] == 0x2001 && (0x10..0x30).contains(&seg[1])) // ORCHID 2001:10::/28, 2001:20::/28
        || (seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 1) // local-use NAT64
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (seg[0] == 0x2002
            && is_forbidden_v4(Ipv4Addr::new(
                (seg[1] >> 8) as u8,
                seg[1] as u8,
                (seg[2] >> 8) as u8,
                seg[2] as u8,
            ))) // 6to4
}

fn embedded_v4(seg: &[u16; 8]) -> Ipv4Addr {
    Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    )
}

/// Is this host name one that always means "this machine", whatever DNS says? Checked
/// without its trailing dots (`localhost.` is the fully qualified `localhost`) and case.
pub fn is_local_hostname(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost") || h.is_empty()
}

/// A URL a webhook may be sent to, as far as can be told without DNS: http(s), no
/// credentials, and no literal address or local name that `policy` refuses. Returns the
/// parsed URL; host names still have to be resolved and checked.
pub fn check_url(raw: &str, policy: &TargetPolicy) -> Result<Url, TargetError> {
    let url = parse_url(raw)?;
    check_host(&url, policy)?;
    Ok(url)
}

/// The half of [`check_url`] that does not depend on the settings: an http(s) URL with a
/// host and no credentials. Deliveries parse a hook's URL once with this (see
/// `storage::DeliveryTarget`) and run [`check_host`] per request.
pub fn parse_url(raw: &str) -> Result<Url, TargetError> {
    let url = Url::parse(raw).map_err(|e| TargetError::Invalid(e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(TargetError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    if url.host().is_none() {
        return Err(TargetError::Invalid("the URL has no host".into()));
    }
    Ok(url)
}

/// The other half: a literal IP host must be one `policy` allows, and a host name must not
/// be a local one unless listed (names are checked again, per address, when resolved).
pub fn check_host(url: &Url, policy: &TargetPolicy) -> Result<(), TargetError> {
    let Some(host) = url.host() else {
        return Err(TargetError::Invalid("the URL has no host".into()));
    };
    let forbidden = match &host {
        Host::Ipv4(ip) => !policy.allows_ip(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => !policy.allows_ip(IpAddr::V6(*ip)),
        Host::Domain(d) => is_local_hostname(d) && !policy.allows_name(d),
    };
    if forbidden {
        return Err(TargetError::Private(host.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden_ip(s.parse().unwrap())
    }

    #[test]
    fn private_and_special_ranges_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.0.0.1",
            "::ffff:0:169.254.169.254",
            "64:ff9b:1::a00:1",
            "64:ff9b:1::808:808",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:20::1",
            "100::1",
            "3fff::1",
            "2606:4700::5efe:7f00:1",
            "2606:4700::200:5efe:a9fe:a9fe",
        ] {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "::ffff:0:8.8.8.8",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
            "2606:4700::5efe:808:808",
        ] {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_literal_hosts() {
        assert!(check_url(
            "https://example.com/hook",
            &TargetPolicy::all_private(false)
        )
        .is_ok());
        assert_eq!(
            check_url("ftp://example.com", &TargetPolicy::all_private(false)).unwrap_err(),
            TargetError::Scheme
        );
        assert_eq!(
            check_url("https://u:p@example.com", &TargetPolicy::all_private(false)).unwrap_err(),
            TargetError::Credentials
        );
        assert!(matches!(
            check_url("not a url", &TargetPolicy::all_private(false)),
            Err(TargetError::Invalid(_))
        ));
        for u in [
            "http://127.0.0.1:3000/x",
            "http://localhost/x",
            "http://api.localhost/",
            "http://[::1]/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://[::ffff:0:127.0.0.1]/",
            "http://[::ffff:0:7f00:1]/",
            "http://localhost./",
            "http://LOCALHOST../",
            "http://api.localhost./",
            "http://127.0.0.1./",
            "http://0x7f000001./",
            "http://10.0.0.1./x",
        ] {
            assert!(
                matches!(
                    check_url(u, &TargetPolicy::all_private(false)),
                    Err(TargetError::Private(_))
                ),
                "{u}"
            );
            assert!(
                check_url(u, &TargetPolicy::all_private(true)).is_ok(),
                "{u} allowed with the opt-in"
            );
        }
    }

    #[test]
    fn allowed_targets_open_their_ranges_and_names_only() {
        let policy = TargetPolicy {
            allow_all_private: false,
            allowed: "10.1.2.0/24, fd00::/8,192.168.0.7, Receiver.Internal., *.svc.local"
                .parse()
                .unwrap(),
        };
        for ip in [
            "10.1.2.3",
            "10.1.2.255",
            "fd00::1",
            "192.168.0.7",
            "::ffff:10.1.2.9",
            "8.8.8.8",
        ] {
            assert!(policy.allows_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.1.3.1",
            "192.168.0.8",
            "127.0.0.1",
            "169.254.169.254",
            "fe80::1",
        ] {
            assert!(!policy.allows_ip(ip.parse().unwrap()), "{ip}");
        }
        for name in [
            "receiver.internal",
            "RECEIVER.internal.",
            "a.svc.local",
            "b.a.svc.local",
        ] {
            assert!(policy.allows_name(name), "{name}");
        }
        for name in ["svc.local", "xsvc.local", "other.internal", "localhost"] {
            assert!(!policy.allows_name(name), "{name}");
        }
        assert!(check_url("http://10.1.2.3/h", &policy).is_ok());
        assert!(check_url("http://10.1.3.3/h", &policy).is_err());
        assert!(check_url("http://localhost/h", &policy).is_err());
        let open = TargetPolicy::all_private(true);
        assert!(open.allows_ip("127.0.0.1".parse().unwrap()) && open.allows_name("anything"));
        // IPv4-mapped IPv6: kept as IPv4, the prefix within its last 32 bits.
        let mapped: IpRanges = "::ffff:10.1.0.0/112".parse().unwrap();
        assert!(mapped.contains("10.1.2.3".parse().unwrap()));
        assert!(!mapped.contains("10.2.0.1".parse().unwrap()));
        assert!(!mapped.contains("127.0.0.1".parse().unwrap()));
        let one: IpRanges = "::ffff:10.1.2.3".parse().unwrap();
        assert!(one.contains("10.1.2.3".parse().unwrap()));
        assert!(!one.contains("10.1.2.4".parse().unwrap()));
        assert!("::ffff:10.0.0.0/64".parse::<IpRanges>().is_err());
        for bad in [
            "10.0.0.0/33",
            "http://x",
            "a..b",
            "-x/y",
            "*.",
            "exa mple",
            "::ffff:1.2.3.4/95",
        ] {
            assert!(bad.parse::<AllowedTargets>().is_err(), "{bad}");
        }
        assert_eq!(
            "".parse::<AllowedTargets>().unwrap(),
            AllowedTargets::default()
        );
    }
}
