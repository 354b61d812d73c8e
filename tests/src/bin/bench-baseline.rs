//! The benchmark's baseline: a trivial actix-web handler answering `GET /userinfo` with a fixed
//! JSON body of the size the daemon's `/userinfo` answers (`--body-bytes N`), with the daemon's
//! worker count, so the ratio isolates what the daemon itself costs.

use actix_web::{App, HttpResponse, HttpServer, web};

fn main() -> std::io::Result<()> {
    let mut port = 0u16;
    let mut size = 512usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--body-bytes" => size = args.next().and_then(|v| v.parse().ok()).unwrap_or(512),
            other => eprintln!("bench-baseline: ignoring {other}"),
        }
    }
    // A JSON object padded to exactly `size` bytes.
    let padding = size.saturating_sub(r#"{"sub":"x","pad":""}"#.len());
    let body = web::Bytes::from(format!(r#"{{"sub":"x","pad":"{}"}}"#, "p".repeat(padding)));
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let body = body.clone();
            App::new().route(
                "/userinfo",
                web::get().to(move || {
                    let body = body.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body)
                    }
                }),
            )
        })
        .bind(("127.0.0.1", port))?;
        let addr = server.addrs()[0];
        println!("listening on http://{addr}");
        server.run().await
    })
}
