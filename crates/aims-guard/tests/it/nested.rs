//! A guard on a route of a nested axum router: every proof is checked against the path
//! the client sent (`/admin/x`), the one authorization decides on, not the route's own
//! path (`/x`, the prefix stripped by `Router::nest`).

use aims_crypto::{Algorithm, SigningKey};
use aims_guard::{AuthenticatedAgent, Guard, GuardLayer};
use aims_jose::dpop::create_proof;
use axum::Router;
use axum::routing::any;

use crate::common::{AGENT, AUTHORITY, Env, client, problem_code, serve};

/// `/admin/x`: a guarded route under `Router::nest("/admin", ..)`.
fn nested_app(guard: &Guard) -> Router {
    let inner = Router::new().route(
        "/x",
        any(|agent: AuthenticatedAgent| async move { agent.id().to_string() })
            .layer(GuardLayer::new(guard.clone())),
    );
    Router::new().nest("/admin", inner)
}

#[tokio::test]
async fn proofs_under_a_nested_router_name_the_whole_path() {
    let env = Env::new();
    let guard = env.guard();
    let addr = serve(nested_app(&guard)).await;
    let url = format!("http://{addr}/admin/x");

    // DPoP `htu`.
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let at = env.access_token("user:alice", AGENT, &key);
    let send_dpop = |path: &str| {
        let htu = format!("{AUTHORITY}{path}");
        let nonce = guard.dpop_nonce();
        let proof = create_proof(&key, "GET", &htu, Some(&at), Some(&nonce), env.now()).unwrap();
        client()
            .get(&url)
            .header("authorization", format!("DPoP {at}"))
            .header("dpop", proof)
            .send()
    };
    let r = send_dpop("/x").await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(problem_code(r).await, "dpop-htu-mismatch");
    let r = send_dpop("/admin/x").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), AGENT);

    // WPT `aud`.
    let (key, wit) = env.wit_for(AGENT, 3600);
    let send_wpt = |path: &str| {
        client()
            .get(&url)
            .header("workload-identity-token", &wit)
            .header(
                "workload-proof-token",
                env.wpt(&key, &wit, &format!("{AUTHORITY}{path}"), None),
            )
            .send()
    };
    let r = send_wpt("/x").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "wpt-audience-mismatch");
    assert_eq!(send_wpt("/admin/x").await.unwrap().status(), 200);

    // HTTP signature: `wimse-aud` and `@request-target`.
    let send_signed = |path: &str| {
        crate::wimse::signed(
            &env,
            addr,
            &key,
            &wit,
            ("GET", path, b""),
            ("GET", "/admin/x", b""),
            false,
        )
        .send()
    };
    let r = send_signed("/x").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(problem_code(r).await, "httpsig-audience-mismatch");
    assert_eq!(send_signed("/admin/x").await.unwrap().status(), 200);
}
