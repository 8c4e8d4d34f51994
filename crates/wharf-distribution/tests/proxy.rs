//! Proxies from the environment (its own test binary: the environment is read once, when the
//! client is built). A registry name that never resolves is reached only through the proxy
//! on 127.0.0.1: HTTPS by CONNECT (refused here), then plain HTTP in absolute form with the
//! proxy's credentials; loopback registries are never proxied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{image, Req, State};
use std::sync::{Arc, Mutex};
use wharf_distribution::{Credentials, Reference, Registries, RegistryOptions};

/// What the proxy was asked: method, target, Proxy-Authorization.
type Seen = (String, String, Option<String>);

#[tokio::test]
async fn requests_go_through_the_environments_proxy() {
    let img = image(51, &[1000]);
    let mut st = State::default();
    img.install(&mut st, "latest");
    let state = Arc::new(Mutex::new(st));
    let registry = common::registry(state.clone());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let seen2 = seen.clone();
    let proxy = common::serve(Arc::new(move |req: Req| {
        let auth = req
            .headers
            .get(http::header::PROXY_AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned());
        seen2
            .lock()
            .unwrap()
            .push((req.method.to_string(), req.uri.to_string(), auth));
        if req.method == http::Method::CONNECT {
            return common::full(http::StatusCode::FORBIDDEN, "no tunnels here");
        }
        registry(req)
    }))
    .await;
    let proxy_url = format!("http://pu:pp@{}", proxy.addr);
    for (k, v) in [
        ("HTTP_PROXY", proxy_url.as_str()),
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("NO_PROXY", ""),
        ("http_proxy", ""),
        ("https_proxy", ""),
        ("no_proxy", ""),
    ] {
        std::env::set_var(k, v);
    }
    let reg = Registries::new(RegistryOptions {
        insecure_registries: vec!["registry.test:5000".into()],
        ..Default::default()
    })
    .unwrap();

    let name = Reference::parse_normalized_named("registry.test:5000/library/app").unwrap();
    let r = reg.repository(&name, Credentials::Anonymous);
    let m = r.manifest("latest").await.unwrap();
    assert_eq!(m.digest.as_str(), img.manifest_digest);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, "CONNECT");
        assert_eq!(seen[0].1, "registry.test:5000");
        assert_eq!(seen[0].2.as_deref(), Some("Basic cHU6cHA="));
        // The ping, then the tag's HEAD, in absolute form through the proxy.
        let asked: Vec<_> = seen[1..3]
            .iter()
            .map(|(m, t, _)| format!("{m} {t}"))
            .collect();
        assert_eq!(
            asked,
            [
                "GET http://registry.test:5000/v2/",
                "HEAD http://registry.test:5000/v2/library/app/manifests/latest"
            ]
        );
        assert_eq!(seen[2].2.as_deref(), Some("Basic cHU6cHA="));
    }

    // A registry on loopback is reached directly, whatever the environment says.
    let (_direct_state, direct) = {
        let mut st = State::default();
        img.install(&mut st, "latest");
        common::start(st).await
    };
    let before = seen.lock().unwrap().len();
    let name = Reference::parse_normalized_named(&format!("{}/library/app", direct.addr)).unwrap();
    reg.repository(&name, Credentials::Anonymous)
        .manifest("latest")
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), before);
}
