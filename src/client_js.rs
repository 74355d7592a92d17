//! The JS client, embedded in the binary and served below the comet prefix, so a page
//! needs nothing but `import { Client } from '/comet/client.js'`.
//!
//! The client (`client/` at the top of the repository) is plain ES modules that import each
//! other by relative URL. The server serves the package's files at the same relative paths
//! below the prefix (`<prefix>/client.js`, `<prefix>/codes.js`, `<prefix>/lib/Client.js`,
//! …), so those imports resolve the same in Node and in a browser, with no build step.
//!
//! Caching: each file carries a strong `ETag` (a hash of its text) and `Cache-Control:
//! no-cache`, so browsers keep it and revalidate it with a cheap `304` on each load. A
//! longer `max-age` would save that round trip but could mix modules of two server
//! versions after an upgrade, and the modules must match. `Access-Control-Allow-Origin: *`
//! lets pages on other origins import the client (module scripts need CORS).

use actix_web::http::header::{self, ETag, EntityTag, IfNoneMatch};
use actix_web::{web, HttpRequest, HttpResponse};

/// One file of the client, as served.
struct Asset {
    /// Path below the prefix, without the leading slash; also the path in `client/`.
    path: &'static str,
    body: &'static str,
    /// FNV-1a of `body`, computed at compile time: the `ETag`.
    hash: u64,
}

/// Embeds `client/<path>`.
macro_rules! asset {
    ($path:literal) => {
        Asset {
            path: $path,
            body: include_str!(concat!("../client/", $path)),
            hash: fnv1a(include_bytes!(concat!("../client/", $path))),
        }
    };
}

/// Every module of the client. A test checks that no `.js` file of the package is missing.
const ASSETS: &[Asset] = &[
    asset!("client.js"),
    asset!("codes.js"),
    asset!("lib/Auth.js"),
    asset!("lib/AutoReconnect.js"),
    asset!("lib/Client.js"),
    asset!("lib/CometError.js"),
    asset!("lib/Emitter.js"),
    asset!("lib/Heartbeat.js"),
    asset!("lib/History.js"),
    asset!("lib/Positions.js"),
    asset!("lib/Presence.js"),
    asset!("lib/Requests.js"),
    asset!("lib/SocketTransport.js"),
    asset!("lib/SockJsTransport.js"),
    asset!("lib/SocketIoTransport.js"),
    asset!("lib/protocol.js"),
    asset!("lib/Subscriptions.js"),
    asset!("lib/WebSocketTransport.js"),
];

/// The 64-bit FNV-1a hash: tiny, `const`, and stable across builds and processes, so every
/// process behind a balancer gives the same `ETag` for the same file.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Adds a `GET` route for each file of the client to a comet scope.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    for asset in ASSETS {
        config.route(
            &format!("/{}", asset.path),
            web::get().to(move |req: HttpRequest| async move { asset.respond(&req) }),
        );
    }
}

impl Asset {
    fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let etag = EntityTag::new_strong(format!("{:016x}", self.hash));
        let not_modified = matches_etag(req, &etag);
        let mut response = if not_modified {
            HttpResponse::NotModified()
        } else {
            HttpResponse::Ok()
        };
        response
            .insert_header(ETag(etag))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .content_type("text/javascript; charset=utf-8");
        if not_modified {
            response.finish()
        } else {
            response.body(self.body)
        }
    }
}

/// Whether the request's `If-None-Match` names `etag` (weakly, as RFC 9110 asks for GET).
fn matches_etag(req: &HttpRequest, etag: &EntityTag) -> bool {
    if !req.headers().contains_key(header::IF_NONE_MATCH) {
        return false;
    }
    match <IfNoneMatch as header::Header>::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(etag)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use actix_web::dev::ServiceResponse;
    use actix_web::http::header::HeaderName;
    use actix_web::test::{call_service, init_service, read_body, TestRequest};
    use actix_web::App;
    use comet_actors::{CloseCode, ErrorCode};

    use super::*;
    use crate::Comet;

    fn client_dir() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/client"))
    }

    /// The `.js` files of the published package: the entry points and `lib/`.
    fn package_modules() -> BTreeSet<String> {
        let mut modules = BTreeSet::new();
        for (dir, prefix) in [
            (client_dir().to_path_buf(), ""),
            (client_dir().join("lib"), "lib/"),
        ] {
            for entry in std::fs::read_dir(dir).expect("client/ is readable") {
                let name = entry.expect("a directory entry").file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".js") {
                    modules.insert(format!("{prefix}{name}"));
                }
            }
        }
        modules
    }

    #[test]
    fn every_module_of_the_package_is_served() {
        let served: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        assert_eq!(served, package_modules());
    }

    #[test]
    fn every_relative_import_points_at_a_served_module() {
        let served: BTreeSet<&str> = ASSETS.iter().map(|a| a.path).collect();
        for asset in ASSETS {
            let dir = Path::new(asset.path).parent().unwrap_or(Path::new(""));
            let statements = asset.body.lines().filter(|line| {
                ["import ", "export ", "} from "]
                    .iter()
                    .any(|s| line.starts_with(s))
            });
            for line in statements {
                let Some((_, rest)) = line.split_once(" from '") else {
                    continue;
                };
                let target = rest.split('\'').next().unwrap_or_default();
                assert!(
                    target.starts_with('.'),
                    "{}: imports `{target}`",
                    asset.path
                );
                let mut path = dir.to_path_buf();
                for part in target.split('/') {
                    match part {
                        "." => {}
                        ".." => assert!(path.pop(), "{}: `{target}` leaves the client", asset.path),
                        part => path.push(part),
                    }
                }
                let path = path.to_string_lossy().replace('\\', "/");
                assert!(
                    served.contains(path.as_str()),
                    "{}: imports `{target}`, not served",
                    asset.path
                );
            }
        }
    }

    #[test]
    fn codes_js_names_every_code_of_the_server() {
        let codes_js = ASSETS.iter().find(|a| a.path == "codes.js").unwrap().body;
        for code in ErrorCode::BUILTIN {
            assert!(
                codes_js.contains(&format!(": '{code}',")),
                "codes.js lacks `{code}`"
            );
        }
        for code in CloseCode::BUILTIN {
            assert!(
                codes_js.contains(&format!(": {},", code.code())),
                "codes.js lacks close code {}",
                code.code()
            );
        }
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    fn header(response: &ServiceResponse, name: HeaderName) -> String {
        let value = response
            .headers()
            .get(&name)
            .unwrap_or_else(|| panic!("no {name}"));
        value.to_str().expect("an ASCII header").to_owned()
    }

    #[actix_web::test]
    async fn serves_the_modules_as_javascript_with_revalidation() {
        let comet = Comet::builder().build().expect("default comet");
        let app = init_service(App::new().service(comet.scope("/comet"))).await;
        let get = |uri: &str| TestRequest::get().uri(uri);

        let response = call_service(&app, get("/comet/client.js").to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-cache");
        assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
        let etag = header(&response, header::ETAG);
        assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
        let body = read_body(response).await;
        assert!(std::str::from_utf8(&body)
            .unwrap()
            .contains("export { Client }"));

        let revalidate = get("/comet/client.js")
            .insert_header((header::IF_NONE_MATCH, etag.clone()))
            .to_request();
        let response = call_service(&app, revalidate).await;
        assert_eq!(response.status(), 304);
        assert_eq!(header(&response, header::ETAG), etag);
        assert!(read_body(response).await.is_empty());

        let stale = get("/comet/client.js")
            .insert_header((header::IF_NONE_MATCH, "\"0000000000000000\""))
            .to_request();
        assert_eq!(call_service(&app, stale).await.status(), 200);

        let response = call_service(&app, get("/comet/lib/Client.js").to_request()).await;
        assert_eq!(response.status(), 200);
        assert_ne!(header(&response, header::ETAG), etag);

        for missing in [
            "/comet/lib/Nope.js",
            "/comet/client.d.ts",
            "/comet/package.json",
        ] {
            let response = call_service(&app, get(missing).to_request()).await;
            assert_eq!(response.status(), 404, "{missing}");
        }
        comet.shutdown().await;
    }
}
