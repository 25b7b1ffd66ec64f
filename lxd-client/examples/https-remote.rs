//! Talk to LXD over HTTPS as a new client: fetch and pin the server's certificate, become
//! trusted with a token, then run a command.
//!
//! ```text
//! TOKEN=$(lxc config trust add --name demo | tail -1)
//! cargo run -p lxd-client --example https-remote -- https://127.0.0.1:8443 "$TOKEN" c1
//! ```
//! (Run it once per token: a token is used up when the certificate is added. The generated
//! client certificate is not kept; remove it afterwards with `lxc config trust remove`.)

use anyhow::{Context, Result, bail};
use lxd_client::{Client, ClientIdentity, ServerPin, TrustToken};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (url, token, instance) = match (args.next(), args.next(), args.next()) {
        (Some(u), Some(t), Some(i)) => (u, t, i),
        _ => bail!("usage: https-remote URL TOKEN INSTANCE"),
    };
    // Trust on first use, confirmed by the token, which names the server's certificate.
    let cert = lxd_client::fetch_server_certificate(&url).await?;
    if TrustToken::decode(&token)?.fingerprint != cert.fingerprint().as_str() {
        bail!(
            "the server's certificate {} is not the one in the token",
            cert.fingerprint()
        );
    }
    let me = ClientIdentity::generate("https-remote-example")?;
    let client = Client::https(&url, ServerPin::Certificate(cert), Some(me.clone()))?;
    client
        .certificates()
        .trust_with_token(me.certificate(), &token)
        .await?;
    println!(
        "auth: {}; fingerprint: {}",
        client.server().await?.auth,
        me.fingerprint()
    );

    let out = client
        .instances()
        .exec(&instance, ["uname", "-a"])
        .output()
        .await?;
    print!(
        "{}",
        String::from_utf8(out.stdout).context("output is not UTF-8")?
    );
    Ok(())
}
