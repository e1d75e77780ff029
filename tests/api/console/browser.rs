//! The console in real headless Chromium: `tests/browser/console.mjs`, run by node.

use super::*;
use std::path::PathBuf;

fn logto_signature(key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Where the browser test leaves its screenshots (test artifacts).
fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
}

#[tokio::test]
async fn a_browser_signs_in_sees_the_hooks_and_signs_out() {
    let browser = browser_dir();
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first (the README's test command does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (apt-get install chromium; .ci/run installs it)"
    );
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_hook(&["User.Created", "PostSignIn"], &receiver.url())
        .await;
    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots).unwrap();
    // On the blocking pool: the app answers the browser on this test's runtime meanwhile.
    let (script, base, dir) = (browser.join("console.mjs"), app.base.clone(), shots.clone());
    let receiver_url = receiver.url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(base)
            .arg(TOKEN)
            .arg(dir)
            .arg(receiver_url)
            .current_dir(browser_dir())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("console ok"), "{stdout}");
    assert!(shots.join("hooks.png").exists());
    // The hook the form made is a real one: its test event, its delivery and the retry the
    // page asked for came with the form's header, signed with the rotated key; the API's hook
    // got its one delivery.
    let got = receiver
        .wait_for(4, std::time::Duration::from_secs(10))
        .await;
    let from_console: Vec<_> = got
        .iter()
        .filter(|r| r.header("x-from") == "console")
        .collect();
    assert_eq!((got.len(), from_console.len()), (4, 3));
    let hooks = app.get_json("/hooks").await;
    let console_hook = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "From the console")
        .unwrap();
    assert_eq!(console_hook["config"]["timeoutMs"], 2500);
    let key = console_hook["signingKey"].as_str().unwrap();
    for r in &from_console {
        assert_eq!(
            r.header("logto-signature-sha-256"),
            logto_signature(key, &r.body)
        );
    }
    app.stop().await;
}
