//! Proxies from the environment, read once when the client is built, with Go's rules
//! (`http.ProxyFromEnvironment`): `HTTP_PROXY` for http, `HTTPS_PROXY` for https (upper case
//! first, then lower case), `NO_PROXY` exceptions, and never a proxy for loopback.

use http::Uri;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};

pub(crate) struct Proxy {
    matcher: Matcher,
}

fn env_any(names: &[&str]) -> String {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

impl Proxy {
    pub fn from_env() -> Proxy {
        Proxy::new(
            &env_any(&["HTTP_PROXY", "http_proxy"]),
            &env_any(&["HTTPS_PROXY", "https_proxy"]),
            &env_any(&["NO_PROXY", "no_proxy"]),
        )
    }

    pub fn new(http: &str, https: &str, no: &str) -> Proxy {
        Proxy {
            matcher: Matcher::builder()
                .http(http.to_owned())
                .https(https.to_owned())
                .no(no.to_owned())
                .build(),
        }
    }

    /// The proxy for `dst`, if any.
    pub fn intercept(&self, dst: &Uri) -> Option<Intercept> {
        let host = dst.host()?;
        if is_loopback(host) {
            return None;
        }
        self.matcher.intercept(dst)
    }
}

/// Go never proxies `localhost` or a loopback address, whatever the environment says.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_are_chosen_like_go() {
        let p = Proxy::new(
            "http://proxy:3128",
            "proxy-s:3129",
            "example.com,10.0.0.0/8",
        );
        let via = |u: &str| {
            p.intercept(&u.parse().unwrap())
                .map(|i| i.uri().to_string())
        };
        assert_eq!(
            via("http://r.io/v2/").as_deref(),
            Some("http://proxy:3128/")
        );
        // No scheme means http://, as in Go.
        assert_eq!(
            via("https://r.io/v2/").as_deref(),
            Some("http://proxy-s:3129/")
        );
        assert_eq!(via("https://example.com/v2/"), None);
        assert_eq!(via("https://sub.example.com/v2/"), None);
        assert_eq!(via("http://10.1.2.3:5000/v2/"), None);
        assert_eq!(via("http://127.0.0.1:5000/v2/"), None);
        assert_eq!(via("http://localhost:5000/v2/"), None);
        assert_eq!(via("http://[::1]:5000/v2/"), None);
        let none = Proxy::new("", "", "");
        assert!(none.intercept(&"https://r.io/".parse().unwrap()).is_none());
    }
}
