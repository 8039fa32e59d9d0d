//! TLS for the fleet's connections, with rustls (no OpenSSL on the user's
//! machine): libpq's `sslmode` and `sslrootcert`, read from the URL (or
//! key=value string) or, as libpq does, from `PGSSLMODE` and
//! `PGSSLROOTCERT`.
//!
//! | `sslmode` | encrypted | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | no | |
//! | `prefer` (the default) | when the server offers it, but not on this machine (loopback, a Unix socket) | not checked |
//! | `require` | always | not checked (checked as `verify-ca` when `sslrootcert` is given, as libpq does) |
//! | `verify-ca` | always | signed by a trusted authority |
//! | `verify-full` | always | signed by a trusted authority, and for the host connected to |
//!
//! The trusted authorities are those of `sslrootcert` (a PEM file), or the
//! system's (`sslrootcert=system`, and the default).
//!
//! The driver (tokio-postgres) knows `disable`, `prefer` and `require`
//! only: the two parameters are taken out of the URL before it reads it,
//! and the checks are made by the rustls configuration given here.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode=allow is not supported: use prefer (TLS when the server offers it)"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "sslmode={other:?} is not a mode: use disable, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }

    /// What the driver is told: whether to ask for TLS, and must get it.
    fn for_driver(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self {
            SslMode::Disable => Driver::Disable,
            SslMode::Prefer => Driver::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
        }
    }
}

/// Whose signatures make a server's certificate trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The system's authorities.
    System,
    /// The authorities in this PEM file (`sslrootcert=...`).
    File(PathBuf),
}

/// What a connection's TLS must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub(crate) mode: SslMode,
    /// `sslrootcert`, when given.
    pub(crate) roots: Option<Roots>,
}

impl TlsSettings {
    /// Whether the server's certificate is checked, and how far.
    fn check(&self) -> Check {
        match (self.mode, &self.roots) {
            (SslMode::VerifyFull, _) => Check::Full,
            (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Check::Authority,
            _ => Check::Nothing,
        }
    }

    /// The driver's configuration of it. `prefer` leaves connections to
    /// this machine (loopback or a Unix socket) unencrypted: the traffic
    /// never leaves the machine, and TLS there costs a fleet on one
    /// machine about a quarter of its throughput (`benches/fleet.rs`,
    /// 2 x 256: 9,300-11,000 tasks/s with it, 14,000-15,200 without).
    /// `require` and the `verify-` modes encrypt there too.
    pub(crate) fn apply(&self, config: &mut tokio_postgres::Config) {
        let mode = match self.mode {
            SslMode::Prefer if only_this_machine(config) => SslMode::Disable,
            mode => mode,
        };
        config.ssl_mode(mode.for_driver());
    }

    /// The connector that makes every connection's TLS as these settings
    /// say.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        // ring: it builds with a C compiler alone (aws-lc-rs, rustls's
        // default, wants cmake too). rustls 0.23.48 deprecates it for its
        // lack of post-quantum key exchange, which PostgreSQL's own TLS
        // (OpenSSL 3.0 on Debian 12) does not offer either.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS cannot be set up: {e}"))?;
        let check = self.check();
        let config = if check == Check::Nothing {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                .with_no_client_auth()
        } else {
            let roots = self.roots()?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("TLS cannot be set up: {e}"))?;
            if check == Check::Full {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AuthorityOnly(webpki)))
                    .with_no_client_auth()
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// The trusted authorities.
    fn roots(&self) -> Result<RootCertStore, String> {
        let mut store = RootCertStore::empty();
        match self.roots.as_ref().unwrap_or(&Roots::System) {
            Roots::File(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        format!(
                            "sslrootcert={}: cannot read the certificates there ({e}): give a PEM \
                             file of the authority that signed the server's certificate",
                            path.display()
                        )
                    })?;
                if certs.is_empty() {
                    return Err(format!(
                        "sslrootcert={}: no certificate in it: give a PEM file of the authority \
                         that signed the server's certificate",
                        path.display()
                    ));
                }
                for cert in certs {
                    store.add(cert).map_err(|e| {
                        format!(
                            "sslrootcert={}: a certificate there is not usable ({e})",
                            path.display()
                        )
                    })?;
                }
            }
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
                if store.is_empty() {
                    return Err(
                        "no trusted certificate authorities on this system: install the \
                         ca-certificates package, or give sslrootcert=/path/to/ca.crt"
                            .into(),
                    );
                }
            }
        }
        Ok(store)
    }
}

/// Whether every address `config` connects to is on this machine.
fn only_this_machine(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    let addrs = config.get_hostaddrs();
    if !addrs.is_empty() {
        return addrs.iter().all(|addr| addr.is_loopback());
    }
    !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(|host| match host {
            Host::Tcp(name) => {
                name.eq_ignore_ascii_case("localhost")
                    || name
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            Host::Unix(_) => true,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Authority,
    Full,
}

/// Takes `sslmode` and `sslrootcert` out of `url` (a URL or a key=value
/// string), with `PGSSLMODE` and `PGSSLROOTCERT` where it has none: what
/// is left, for the driver, and the settings.
pub(crate) fn split(url: &str) -> Result<(String, TlsSettings), String> {
    split_with_env(url, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

fn split_with_env(
    url: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(String, TlsSettings), String> {
    let (rest, taken) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        take_from_query(url)
    } else {
        take_from_pairs(url)
    };
    let value = |key: &str| {
        taken
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| env(&format!("PG{}", key.to_uppercase())))
    };
    let mode = match value("sslmode") {
        Some(mode) => SslMode::parse(&mode)?,
        None => SslMode::Prefer,
    };
    let roots = value("sslrootcert").map(|path| match path.as_str() {
        "system" => Roots::System,
        _ => Roots::File(PathBuf::from(path)),
    });
    Ok((rest, TlsSettings { mode, roots }))
}

/// The parameters the driver does not read.
const TAKEN: [&str; 2] = ["sslmode", "sslrootcert"];

/// `postgres://...?a=1&sslmode=x&b=2` → `postgres://...?a=1&b=2`.
fn take_from_query(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), Vec::new());
    };
    let mut taken = Vec::new();
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if TAKEN.contains(&key) {
            taken.push((key.to_owned(), percent_decoded(value)));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, taken)
}

/// `%2F` → `/` (and `+` kept: libpq's URLs do not read it as a space).
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `host=h sslmode='verify-full' dbname=x` → `host=h dbname=x`: the
/// key=value form, values bare or quoted (`'...'`, with `\'` and `\\`).
fn take_from_pairs(text: &str) -> (String, Vec<(String, String)>) {
    let bytes = text.as_bytes();
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &text[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            // Not a pair: the driver says what is wrong with it.
            kept.push(&text[start..i]);
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        if TAKEN.contains(&key) {
            taken.push((key.to_owned(), String::from_utf8_lossy(&value).into_owned()));
        } else {
            kept.push(&text[start..i]);
        }
    }
    (kept.join(" "), taken)
}

/// What a failed connection's TLS was, for people: the check that failed
/// and what to do; `None` when TLS is not why it failed. `location` is
/// the store's (`postgres://user@host:port/db`).
pub(crate) fn explain(e: &tokio_postgres::Error, location: &str) -> Option<String> {
    let host = host_of(location);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return Some(explain_rustls(tls, host, location));
        }
        source = err.source();
    }
    let text = e.to_string();
    text.contains("server does not support TLS").then(|| {
        format!(
            "the server at {location} does not accept TLS connections, and sslmode asks for TLS: \
             turn on ssl in the server's postgresql.conf, or connect with sslmode=prefer \
             (or disable)"
        )
    })
}

/// The host of a store's location.
fn host_of(location: &str) -> &str {
    let rest = location.split_once("://").map_or(location, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
            host.trim_start_matches('[').trim_end_matches(']')
        }
        _ => authority,
    }
}

fn explain_rustls(e: &rustls::Error, host: &str, location: &str) -> String {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!(
                "the server's certificate is not for the host name {host:?} \
                 (sslmode=verify-full checks the name): connect by a name the certificate \
                 holds, or use sslmode=verify-ca to check only who signed it"
            )
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
            "the server's certificate (at {location}) is not signed by a trusted authority \
             (sslmode=verify-ca and verify-full check it): give sslrootcert=/path/to/ca.crt, \
             the authority that signed it"
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("the server's certificate (at {location}) has expired: renew it on the server")
        }
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            format!(
                "the server's certificate (at {location}) is not valid yet: is this machine's clock right?"
            )
        }
        other => format!("the TLS handshake with {location} failed: {other}"),
    }
}

/// `prefer` and `require` without `sslrootcert`, as libpq: encrypted, the
/// certificate not checked (the handshake's signatures still are).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the certificate's chain to a trusted authority is checked,
/// not the name it is for.
#[derive(Debug)]
struct AuthorityOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AuthorityOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last: a wrong name
        // means the chain held.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_alone(url: &str) -> Result<(String, TlsSettings), String> {
        split_with_env(url, |_| None)
    }

    #[test]
    fn the_two_parameters_leave_a_url_and_the_rest_stays() {
        let (rest, tls) = split_alone(
            "postgres://u:p@h/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@h/db?application_name=x&connect_timeout=3"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.roots, Some(Roots::File("/etc/ca.pem".into())));
        let (rest, tls) = split_alone("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://u@h/db");
        assert_eq!((tls.mode, tls.roots), (SslMode::Require, None));
        let (rest, tls) = split_alone("postgresql://h/db").unwrap();
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgresql://h/db", SslMode::Prefer)
        );
    }

    #[test]
    fn the_two_parameters_leave_a_key_value_string_and_the_rest_stays() {
        let (rest, tls) = split_alone(
            "host=h sslmode = 'verify-ca' password='a b\\'c' sslrootcert=system dbname=x",
        )
        .unwrap();
        assert_eq!(rest, "host=h password='a b\\'c' dbname=x");
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.roots, Some(Roots::System));
    }

    #[test]
    fn the_environment_fills_in_what_the_url_does_not_say() {
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("verify-full".to_owned()),
            "PGSSLROOTCERT" => Some("/ca.pem".to_owned()),
            _ => None,
        };
        let (_, tls) = split_with_env("postgres://h/db", env).unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.roots, Some(Roots::File("/ca.pem".into())));
        let (_, tls) = split_with_env("postgres://h/db?sslmode=disable", env).unwrap();
        assert_eq!(tls.mode, SslMode::Disable);
    }

    #[test]
    fn a_mode_that_is_not_one_says_which_are() {
        let e = split_alone("postgres://h/db?sslmode=sometimes").unwrap_err();
        assert!(
            e.contains("disable, prefer, require, verify-ca or verify-full"),
            "{e}"
        );
        let e = split_alone("host=h sslmode=allow").unwrap_err();
        assert!(e.contains("use prefer"), "{e}");
    }

    #[test]
    fn a_missing_or_empty_root_file_is_named_with_the_fix() {
        let settings = TlsSettings {
            mode: SslMode::VerifyFull,
            roots: Some(Roots::File("/nonexistent/ca.pem".into())),
        };
        let e = settings.connector().err().unwrap();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("PEM"),
            "{e}"
        );
        let empty = std::env::temp_dir().join(format!("flyte-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        let settings = TlsSettings {
            mode: SslMode::VerifyCa,
            roots: Some(Roots::File(empty.clone())),
        };
        let e = settings.connector().err().unwrap();
        let _ = std::fs::remove_file(&empty);
        assert!(e.contains("no certificate"), "{e}");
    }

    #[test]
    fn prefer_leaves_this_machine_unencrypted_and_require_does_not() {
        let mode_for = |url: &str| {
            let (rest, tls) = split_alone(url).unwrap();
            let mut config: tokio_postgres::Config = rest.parse().unwrap();
            tls.apply(&mut config);
            config.get_ssl_mode()
        };
        use tokio_postgres::config::SslMode as Driver;
        for local in [
            "postgres://u@localhost/db",
            "postgres://u@127.0.0.1:5433/db",
            "postgres://u@[::1]/db",
            "host=/var/run/postgresql dbname=x",
            "postgres://u@db.example/db?hostaddr=127.0.0.1",
        ] {
            assert_eq!(mode_for(local), Driver::Disable, "{local}");
        }
        for remote in [
            "postgres://u@db.example/db",
            "postgres://u@10.0.0.5/db",
            "postgres://u@localhost,db.example/db",
            "postgres://u@localhost/db?hostaddr=10.0.0.5",
        ] {
            assert_eq!(mode_for(remote), Driver::Prefer, "{remote}");
        }
        assert_eq!(
            mode_for("postgres://u@localhost/db?sslmode=require"),
            Driver::Require
        );
        assert_eq!(
            mode_for("postgres://u@localhost/db?sslmode=verify-full"),
            Driver::Require
        );
    }

    #[test]
    fn the_host_of_a_location() {
        assert_eq!(host_of("postgres://u@db.example:5432/x"), "db.example");
        assert_eq!(host_of("postgres://127.0.0.1:5432/x"), "127.0.0.1");
        assert_eq!(host_of("postgres://u@[::1]:5432/x"), "::1");
    }

    #[test]
    fn what_is_checked_follows_libpq() {
        let check = |mode, roots| TlsSettings { mode, roots }.check();
        assert_eq!(check(SslMode::Prefer, None), Check::Nothing);
        assert_eq!(check(SslMode::Require, None), Check::Nothing);
        assert_eq!(
            check(SslMode::Require, Some(Roots::System)),
            Check::Authority
        );
        assert_eq!(check(SslMode::VerifyCa, None), Check::Authority);
        assert_eq!(check(SslMode::VerifyFull, None), Check::Full);
    }
}
