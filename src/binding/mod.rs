//! The native binding: the internal engine under the JavaScript face (`src/face`). Its
//! inputs are typed and already checked by the face; its results cross back as text
//! (`outcome.rs`) through one completion path per face instance (`channel.rs`). Nothing
//! here builds a JavaScript error or reads an options object: the face does that.

// napi-rs registers the exports only outside `cargo test`.
#![cfg_attr(test, allow(dead_code))]

pub mod channel;
pub mod config;
pub mod manager;
pub mod outcome;

use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;

use crate::core::grant::{request_token as send_grant, Grant};
use crate::core::run::guard_sync;
use crate::core::token::MAX_TOKEN_LEN;
use channel::Channel;
use config::{credential, RequestConfig, MAX_CREDENTIAL_LEN};
use outcome::{error_text, json_outcome};

/// Sends a token request as call `id` of `channel`: the password grant when `username`
/// is given (`secret` is the password), else the refresh_token grant (`secret` is the
/// refresh token). An error text now for what the core refuses; undefined once sent. The
/// outcome is the token endpoint's JSON.
#[napi(catch_unwind)]
pub fn request_token(
    channel: &Channel,
    id: u32,
    config: String,
    username: Option<String>,
    secret: Either<String, Buffer>,
) -> Option<String> {
    let checked = (|| {
        let request = RequestConfig::options(&config)?;
        let grant = match username {
            Some(username) => Grant::Password {
                username: credential(Either::A(username), "username", MAX_CREDENTIAL_LEN)?,
                password: credential(secret, "password", MAX_CREDENTIAL_LEN)?,
            },
            None => Grant::RefreshToken {
                refresh_token: credential(secret, "refreshToken", MAX_TOKEN_LEN)?,
            },
        };
        Ok::<_, String>((grant, request))
    })();
    let (grant, request) = match checked {
        Ok(c) => c,
        Err(text) => return Some(text),
    };
    let work = async move {
        let token = send_grant(&grant, &request).await?;
        Ok(token.json().to_owned())
    };
    channel.spawn(id, work, json_outcome);
    None
}

/// Test hook, not part of the public API: panics inside the addon (`sync` or `async`) to
/// show that a panic settles the call with `ERR_SONETEL_INTERNAL`.
#[napi(catch_unwind)]
pub fn panic_for_testing(channel: &Channel, id: u32, place: String) -> Option<String> {
    if place == "sync" {
        let e = guard_sync::<()>(|| panic!("deliberate panic (sync)")).unwrap_err();
        return Some(error_text(&e));
    }
    channel.spawn(
        id,
        async { panic!("deliberate panic (async)") },
        |o: Result<String, _>| json_outcome(o),
    );
    None
}
