//! The client against an in-process registry on 127.0.0.1: auth flows (basic, bearer, refresh
//! on 401, identity tokens, login), redirects to storage without the registry's credentials,
//! a connection dropped or stalled mid-blob resumed from the byte reached, wrong digests
//! refused, errors in Docker's words, tags pages and docker.io mirrors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{image, sha256, AuthMode, State};
use futures_util::StreamExt;
use http::Method;
use std::time::Duration;
use wharf_distribution::{
    Credentials, Digest, DistributionError, Reference, Registries, RegistryOptions, Repository,
    Timeouts,
};

fn registries() -> Registries {
    Registries::new(RegistryOptions {
        user_agent: "wharf-test/1.0".into(),
        ..Default::default()
    })
    .unwrap()
}

fn repo(reg: &Registries, addr: std::net::SocketAddr, creds: Credentials) -> Repository {
    let name = Reference::parse_normalized_named(&format!("{addr}/library/app")).unwrap();
    reg.repository(&name, creds)
}

fn d(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

async fn collect(
    repo: &Repository,
    digest: &str,
    size: u64,
    offset: u64,
) -> std::io::Result<Vec<u8>> {
    let mut s = repo.blob_stream(&d(digest), size, offset);
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn basic(user: &str, pass: &str) -> Credentials {
    Credentials::Basic {
        username: user.into(),
        password: pass.into(),
    }
}

#[tokio::test]
async fn anonymous_pull_of_manifest_config_and_layer() {
    let img = image(1, &[3000, 70_000]);
    let mut st = State::default();
    img.install(&mut st, "latest");
    let (state, server) = common::start(st).await;
    let reg = registries();
    let r = repo(&reg, server.addr, Credentials::Anonymous);

    let m = r.manifest("latest").await.unwrap();
    assert_eq!(
        m.media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(m.digest.as_str(), img.manifest_digest);
    assert_eq!(m.bytes, img.manifest);
    let by_digest = r.manifest(&img.manifest_digest).await.unwrap();
    assert_eq!(by_digest.digest, m.digest);

    let config = r
        .blob_bytes(&d(&sha256(&img.config)), 1 << 20)
        .await
        .unwrap();
    assert_eq!(config, img.config);
    let layer = &img.layers[1];
    let got = collect(&r, &sha256(layer), layer.len() as u64, 0)
        .await
        .unwrap();
    assert_eq!(got, layer.to_vec());
    // An offset resumes a partial ingest.
    let tail = collect(&r, &sha256(layer), layer.len() as u64, 60_000)
        .await
        .unwrap();
    assert_eq!(tail, layer[60_000..].to_vec());

    let st = state.lock().unwrap();
    // As dockerd: the ping, the tag's HEAD for its digest, the GET by that digest.
    let seen: Vec<_> = st.log[..3]
        .iter()
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert_eq!(
        seen,
        [
            "GET /v2/".to_owned(),
            "HEAD /v2/library/app/manifests/latest".to_owned(),
            format!("GET /v2/library/app/manifests/{}", img.manifest_digest),
        ]
    );
    let first = &st.log[1];
    assert_eq!(first.user_agent.as_deref(), Some("wharf-test/1.0"));
    assert_eq!(
        first.accept,
        [
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
        ]
    );
    assert_eq!(
        st.log.last().unwrap().range.as_deref(),
        Some("bytes=60000-")
    );
}

#[tokio::test]
async fn basic_auth_answers_the_challenge() {
    let img = image(2, &[100]);
    let mut st = State {
        auth: AuthMode::Basic {
            user: "u".into(),
            pass: "pw".into(),
        },
        ..Default::default()
    };
    img.install(&mut st, "v1");
    let (state, server) = common::start(st).await;
    let reg = registries();
    let r = repo(&reg, server.addr, basic("u", "pw"));
    r.manifest("v1").await.unwrap();
    r.blob_bytes(&d(&sha256(&img.layers[0])), 1000)
        .await
        .unwrap();
    {
        let st = state.lock().unwrap();
        // The ping's 401 tells the challenge; from then on the header goes with every
        // request (HEAD of the tag, GET by digest, the blob).
        assert_eq!(st.log.len(), 4, "{:?}", st.log);
        assert_eq!(st.log[0].path, "/v2/");
        assert_eq!(st.log[0].authorization, None);
        for l in &st.log[1..] {
            assert!(l.authorization.as_deref().unwrap().starts_with("Basic "));
        }
    }
    let wrong = repo(&reg, server.addr, basic("u", "nope"));
    let e = wrong.manifest("v1").await.unwrap_err();
    assert!(matches!(e, DistributionError::Unauthorized(_)), "{e:?}");
    assert_eq!(e.to_string(), "unauthorized: authentication required");
    // Without credentials the request is not sent: distribution's ErrNoBasicAuthCredentials
    // in Go's url.Error, named by the tag's HEAD, as dockerd says it.
    let sent = state.lock().unwrap().log.len();
    let anon = repo(&reg, server.addr, Credentials::Anonymous);
    let e = anon.manifest("v1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Head \"http://{}/v2/library/app/manifests/v1\": no basic auth credentials",
            server.addr
        )
    );
    assert!(matches!(
        e.into_cause(),
        DistributionError::NoBasicAuthCredentials
    ));
    {
        let log = &state.lock().unwrap().log;
        assert!(
            log[sent..].iter().all(|l| l.path == "/v2/"),
            "{:?}",
            &log[sent..]
        );
    }
    // A push's upload says it without the request, as dockerd's retryOnError leaves it.
    let img2 = image(21, &[10]);
    let e = anon
        .upload_blob(
            &d(&sha256(&img2.config)),
            img2.config.len() as u64,
            futures_util::stream::iter([Ok(img2.config.clone())]).boxed(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.into_cause().to_string(), "no basic auth credentials");
}

fn bearer_state() -> State {
    State {
        auth: AuthMode::Bearer {
            user: "u".into(),
            pass: "pw".into(),
            refresh: "refresh-1".into(),
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn bearer_tokens_are_fetched_once_cached_and_refreshed_on_401() {
    let img = image(3, &[500, 600]);
    let mut st = bearer_state();
    img.install(&mut st, "latest");
    let (state, server) = common::start(st).await;
    let reg = registries();
    let r = repo(&reg, server.addr, basic("u", "pw"));
    r.manifest("latest").await.unwrap();
    for l in &img.layers {
        collect(&r, &sha256(l), l.len() as u64, 0).await.unwrap();
    }
    {
        let st = state.lock().unwrap();
        assert_eq!(st.tokens_issued, 1);
        assert_eq!(
            st.scopes_asked,
            [vec!["repository:library/app:pull".to_owned()]]
        );
        let token_req = st.log.iter().find(|l| l.path == "/token").unwrap();
        assert!(token_req
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Basic "));
        assert!(
            token_req.query.contains("service=fake"),
            "{}",
            token_req.query
        );
        assert!(token_req.query.contains("account=u"), "{}", token_req.query);
    }
    // Another repository object with the same credentials shares the cache.
    let again = repo(&reg, server.addr, basic("u", "pw"));
    again.manifest("latest").await.unwrap();
    assert_eq!(state.lock().unwrap().tokens_issued, 1);
    // The registry forgets its tokens: the cached one is refused, a new one fetched once.
    state.lock().unwrap().valid_tokens.clear();
    r.manifest("latest").await.unwrap();
    assert_eq!(state.lock().unwrap().tokens_issued, 2);
    // Other credentials never reuse those tokens.
    let e = repo(&reg, server.addr, basic("u", "wrong"))
        .manifest("latest")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Head \"http://{}/v2/library/app/manifests/latest\": unauthorized: incorrect \
             username or password",
            server.addr
        )
    );
    assert!(matches!(
        e.into_cause(),
        DistributionError::Registry { status: 401, .. }
    ));
}

#[tokio::test]
async fn identity_and_registry_tokens() {
    let img = image(4, &[10]);
    let mut st = bearer_state();
    img.install(&mut st, "latest");
    let (state, server) = common::start(st).await;
    let reg = registries();
    let r = repo(
        &reg,
        server.addr,
        Credentials::IdentityToken("refresh-1".into()),
    );
    r.manifest("latest").await.unwrap();
    let token = {
        let st = state.lock().unwrap();
        let post = st
            .log
            .iter()
            .find(|l| l.path == "/token" && l.method == Method::POST)
            .unwrap();
        assert!(
            post.form.contains("grant_type=refresh_token"),
            "{}",
            post.form
        );
        assert!(
            post.form.contains("refresh_token=refresh-1"),
            "{}",
            post.form
        );
        assert!(post.form.contains("client_id=docker"), "{}", post.form);
        assert!(
            post.form
                .contains("scope=repository%3Alibrary%2Fapp%3Apull"),
            "{}",
            post.form
        );
        st.valid_tokens.iter().next().unwrap().clone()
    };
    // A registry token is sent as it is, never traded.
    let r = repo(&reg, server.addr, Credentials::RegistryToken(token));
    r.manifest("latest").await.unwrap();
    assert_eq!(state.lock().unwrap().tokens_issued, 1);
}

#[tokio::test]
async fn login_checks_credentials_like_dockerd() {
    let (_state, server) = common::start(bearer_state()).await;
    let reg = registries();
    let host = server.addr.to_string();
    let ok = reg.login(&host, &basic("u", "pw")).await.unwrap();
    assert_eq!(ok.status, "Login Succeeded");
    assert_eq!(ok.identity_token.as_deref(), Some("refresh-1"));
    let again = reg
        .login(
            &format!("http://{host}/"),
            &Credentials::IdentityToken("refresh-1".into()),
        )
        .await
        .unwrap();
    assert_eq!(again.identity_token.as_deref(), Some("refresh-1"));
    let e = reg.login(&host, &basic("u", "bad")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Get \"http://{host}/v2/\": unauthorized: incorrect username or password")
    );

    let (_s2, basic_server) = common::start(State {
        auth: AuthMode::Basic {
            user: "u".into(),
            pass: "pw".into(),
        },
        ..Default::default()
    })
    .await;
    let host = basic_server.addr.to_string();
    let ok = reg.login(&host, &basic("u", "pw")).await.unwrap();
    assert_eq!(ok.status, "Login Succeeded");
    assert_eq!(ok.identity_token, None);
    let e = reg.login(&host, &basic("u", "bad")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("login attempt to http://{host}/v2/ failed with status: 401 Unauthorized")
    );

    let (_s3, open) = common::start(State::default()).await;
    let ok = reg
        .login(&open.addr.to_string(), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(ok.status, "Login Succeeded");
}

#[tokio::test]
async fn redirects_to_storage_carry_no_registry_credentials() {
    let img = image(5, &[40_000]);
    let mut st = bearer_state();
    img.install(&mut st, "latest");
    let (state, server) = common::start(st).await;
    let storage = common::serve(common::storage(state.clone())).await;
    state.lock().unwrap().redirect_blobs_to = Some(format!("http://{}", storage.addr));
    let reg = registries();
    let r = repo(&reg, server.addr, basic("u", "pw"));
    let layer = &img.layers[0];
    let got = collect(&r, &sha256(layer), layer.len() as u64, 0)
        .await
        .unwrap();
    assert_eq!(got, layer.to_vec());
    let st = state.lock().unwrap();
    assert_eq!(st.storage_log.len(), 1);
    assert_eq!(st.storage_log[0].authorization, None);
    assert_eq!(st.storage_log[0].query, "sig=abc");
    let to_registry = st.log.iter().rfind(|l| l.path.contains("/blobs/")).unwrap();
    assert!(to_registry
        .authorization
        .as_deref()
        .unwrap()
        .starts_with("Bearer "));
}

#[tokio::test]
async fn a_connection_dropped_at_90_percent_fetches_only_the_rest() {
    let img = image(6, &[1 << 20]);
    let layer = img.layers[0].clone();
    let digest = sha256(&layer);
    let len = layer.len() as u64;
    let cut = len * 9 / 10;
    let mut st = State::default();
    img.install(&mut st, "latest");
    st.drop_once.insert(digest.clone(), cut);
    let (state, server) = common::start(st).await;
    let reg = registries();
    let r = repo(&reg, server.addr, Credentials::Anonymous);
    let got = collect(&r, &digest, len, 0).await.unwrap();
    assert_eq!(got.len() as u64, len);
    assert!(got == layer.to_vec(), "resumed bytes differ");
    let st = state.lock().unwrap();
    let gets: Vec<_> = st
        .log
        .iter()
        .filter(|l| l.path.ends_with(&digest))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[1].range, Some(format!("bytes={cut}-")));
    assert_eq!(gets[1].sent, len - cut);
    assert!(gets[1].sent <= len / 10 + 1);
}

#[tokio::test]
async fn a_registry_that_ignores_range_has_the_seen_prefix_skipped() {
    let img = image(7, &[300_000]);
    let layer = img.layers[0].clone();
    let digest = sha256(&layer);
    let mut st = State {
        ignore_range: true,
        ..Default::default()
    };
    img.install(&mut st, "latest");
    st.drop_once.insert(digest.clone(), 200_000);
    let (state, server) = common::start(st).await;
    let reg = registries();
    let r = repo(&reg, server.addr, Credentials::Anonymous);
    let got = collect(&r, &digest, layer.len() as u64, 0).await.unwrap();
    assert!(got == layer.to_vec());
    let st = state.lock().unwrap();
    let gets: Vec<_> = st
        .log
        .iter()
        .filter(|l| l.path.ends_with(&digest))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[1].range.as_deref(), Some("bytes=200000-"), "{gets:?}");
}

#[tokio::test]
async fn a_stalled_body_is_dropped_and_resumed() {
    let img = image(8, &[100_000]);
    let layer = img.layers[0].clone();
    let digest = sha256(&layer);
    let mut st = State::default();
    img.install(&mut st, "latest");
    st.stall_once.insert(digest.clone(), 50_000);
    let (state, server) = common::start(st).await;
    let reg = Registries::with_timeouts(
        RegistryOptions::default(),
        Timeouts {
            stall: Duration::from_secs(1),
            ..Timeouts::default()
        },
    )
    .unwrap();
    let r = repo(&reg, server.addr, Credentials::Anonymous);
    let got = collect(&r, &digest, layer.len() as u64, 0).await.unwrap();
    assert!(got == layer.to_vec());
    let st = state.lock().unwrap();
    let ranges: Vec<_> = st
        .log
        .iter()
        .filter(|l| l.path.ends_with(&digest))
        .map(|l| l.range.clone())
        .collect();
    assert_eq!(ranges, [None, Some("bytes=50000-".to_owned())]);
}

#[tokio::test]
async fn wrong_digests_and_lengths_are_refused() {
    let img = image(9, &[5000]);
    let other = image(10, &[10]);
    let layer = img.layers[0].clone();
    let digest = sha256(&layer);
    let mut st = State::default();
    img.install(&mut st, "latest");
    st.corrupt.insert(digest.clone());
    // A manifest stored under a digest its bytes do not have.
    st.manifests.insert(
        other.manifest_digest.clone(),
        (
            "application/vnd.docker.distribution.manifest.v2+json".into(),
            img.manifest.clone(),
        ),
    );
    let (state, server) = common::start(st).await;
    let reg = registries();
    let r = repo(&reg, server.addr, Credentials::Anonymous);

    let e = r.blob_bytes(&d(&digest), 1 << 20).await.unwrap_err();
    assert!(
        matches!(e, DistributionError::DigestMismatch { .. }),
        "{e:?}"
    );
    assert!(e
        .to_string()
        .starts_with(&format!("digest mismatch: expected {digest}, got sha256:")));

    let e = r.manifest(&other.manifest_digest).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "digest mismatch: expected {}, got {}",
            other.manifest_digest, img.manifest_digest
        )
    );

    state.lock().unwrap().fake_content_digest = Some(other.manifest_digest.clone());
    let e = r.manifest("latest").await.unwrap_err();
    assert!(
        matches!(e, DistributionError::DigestMismatch { .. }),
        "{e:?}"
    );
    state.lock().unwrap().fake_content_digest = None;

    // More bytes than the descriptor says end the stream with an error.
    state.lock().unwrap().corrupt.clear();
    let e = collect(&r, &digest, layer.len() as u64 - 10, 0)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("is longer than the 4990 bytes"),
        "{e}"
    );
    let e = r.blob_bytes(&d(&digest), 100).await.unwrap_err();
    assert!(e.to_string().contains("larger than 100 bytes"), "{e}");
}

#[tokio::test]
async fn missing_content_reads_in_dockers_words() {
    let (_state, server) = common::start(State::default()).await;
    let reg = registries();
    let r = repo(&reg, server.addr, Credentials::Anonymous);
    let e = r.manifest("nosuch").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "manifest for {}/library/app:nosuch not found: manifest unknown: manifest unknown",
            server.addr
        )
    );
    let digest = sha256(b"nothing");
    let e = collect(&r, &digest, 7, 0).await.unwrap_err();
    let inner = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<DistributionError>());
    assert!(
        matches!(inner, Some(DistributionError::BlobUnknown(_))),
        "{e:?}"
    );
    assert_eq!(
        r.blob_bytes(&d(&digest), 10).await.unwrap_err().to_string(),
        format!("blob {digest} not found in the registry")
    );
    assert_eq!(r.blob_exists(&d(&digest)).await.unwrap(), None);
}

#[tokio::test]
async fn tags_follow_link_pages() {
    let tags: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
    let (state, server) = common::start(State {
        tags: tags.clone(),
        tags_page: Some(3),
        ..Default::default()
    })
    .await;
    let reg = registries();
    let r = repo(&reg, server.addr, Credentials::Anonymous);
    assert_eq!(r.tags().await.unwrap(), tags);
    let pages = state
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|l| l.path.ends_with("/tags/list"))
        .count();
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn docker_hub_mirrors_are_tried_in_order() {
    let img = image(11, &[2000]);
    // A mirror that refuses connections, one without the image, one with it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (_empty_state, empty) = common::start(State::default()).await;
    let mut st = State::default();
    img.install(&mut st, "latest");
    let (state, good) = common::start(st).await;
    let reg = Registries::new(RegistryOptions {
        mirrors: vec![
            format!("http://{closed}"),
            format!("http://{}", empty.addr),
            format!("http://{}/", good.addr),
        ],
        ..Default::default()
    })
    .unwrap();
    let name = Reference::parse_normalized_named("app").unwrap();
    let r = reg.repository(&name, Credentials::Anonymous);
    let m = r.manifest("latest").await.unwrap();
    assert_eq!(m.digest.as_str(), img.manifest_digest);
    let layer = &img.layers[0];
    let got = collect(&r, &sha256(layer), layer.len() as u64, 0)
        .await
        .unwrap();
    assert_eq!(got, layer.to_vec());
    let st = state.lock().unwrap();
    assert_eq!(st.log[0].path, "/v2/");
    assert_eq!(st.log[1].path, "/v2/library/app/manifests/latest");
    assert!(st.log.iter().any(|l| l.path.contains("/blobs/")));
}

#[tokio::test]
async fn an_unreachable_registry_reads_like_go() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let reg = registries();
    let r = repo(&reg, closed, Credentials::Anonymous);
    let e = r.manifest("latest").await.unwrap_err();
    assert!(e.is_transport(), "{e:?}");
    // HTTPS was tried first; the error is plain HTTP's, the last endpoint tried, on the
    // ping that comes before a repository's first request, as dockerd's.
    assert_eq!(
        e.to_string(),
        format!("Get \"http://{closed}/v2/\": dial tcp {closed}: connect: connection refused")
    );
    let e = reg
        .login(&closed.to_string(), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Get \"http://{closed}/v2/\": dial tcp {closed}: connect: connection refused")
    );
}
