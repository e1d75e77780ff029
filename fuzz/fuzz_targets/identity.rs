//! Sign-in identifiers, email keys and `Authorization` headers.
#![no_main]
use hookline::domain::authorization::Authorization;
use hookline::domain::identity::user::email_key;
use hookline::domain::interaction::Identifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = Identifier::parse(raw) {
        assert_eq!(Identifier::parse(id.value()), Some(id.clone()));
        let _ = id.state_key();
    }
    let key = email_key(raw);
    assert_eq!(email_key(&key), key);
    if let Some(auth) = Authorization::parse(raw) {
        let _ = auth.bearer();
        let _ = auth.basic();
    }
});
