//! Passkeys (WebAuthn) through kanidm's `webauthn-rs`: the relying party, and
//! the two halves of each ceremony as JSON text.
//!
//! Starting a ceremony gives the options for the browser and a state that must
//! stay on the server (the caller stores it in PostgreSQL, bound to the session,
//! single use); finishing one checks the browser's answer against that state.
//! Nothing here touches the database or the web layer.

use std::fmt;

use uuid::Uuid;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

/// The relying party: Paddock as WebAuthn knows it.
#[derive(Clone)]
pub struct Passkeys(Webauthn);

impl fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Passkeys")
            .field(&self.0.get_allowed_origins())
            .finish()
    }
}

/// Why a browser's answer was not accepted (logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the answer is not readable: {0}")]
    Unreadable(#[from] serde_json::Error),
    #[error("WebAuthn refused the answer: {0:?}")]
    Webauthn(webauthn_rs::prelude::WebauthnError),
    #[error("the answer names a passkey that is not the member's")]
    UnknownPasskey,
}

/// A ceremony begun: options for the browser, state for the server.
pub struct Started {
    pub options: String,
    pub state: String,
}

/// A passkey just registered.
pub struct Registered {
    pub credential_id: Vec<u8>,
    /// The passkey to store (public key, counter), as JSON.
    pub passkey: String,
}

/// A passkey just used.
pub struct Asserted {
    pub credential_id: Vec<u8>,
    /// The authenticator's signature counter (0 for many synced passkeys).
    pub counter: u32,
    /// The stored passkey with its counter advanced, as JSON.
    pub passkey: String,
}

impl Passkeys {
    /// The relying party `rp_id` at `origin` (e.g. `https://paddock.example.org`);
    /// with no origin, `http://{rp_id}` on any port (development and tests).
    pub fn new(rp_id: &str, origin: Option<&str>) -> anyhow::Result<Self> {
        let (origin, any_port) = match origin {
            Some(origin) => (Url::parse(origin)?, false),
            None => (Url::parse(&format!("http://{rp_id}"))?, true),
        };
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .map_err(|e| anyhow::anyhow!("passkeys: {rp_id} cannot serve {origin}: {e:?}"))?
            .rp_name("Paddock")
            .allow_any_port(any_port)
            .build()
            .map_err(|e| anyhow::anyhow!("passkeys: {e:?}"))?;
        Ok(Self(webauthn))
    }

    /// Begins adding a passkey for member `user` (named `email` on the
    /// authenticator), excluding the credentials already registered.
    pub fn start_registration(
        &self,
        user: Uuid,
        email: &str,
        existing: Vec<Vec<u8>>,
    ) -> anyhow::Result<Started> {
        let exclude = (!existing.is_empty()).then_some(existing);
        let (options, state) = self
            .0
            .start_passkey_registration(user, email, email, exclude)
            .map_err(|e| anyhow::anyhow!("starting a passkey registration: {e:?}"))?;
        Ok(Started {
            options: serde_json::to_string(&options)?,
            state: serde_json::to_string(&state)?,
        })
    }

    /// Checks the browser's answer to a registration begun with `state`.
    pub fn finish_registration(&self, answer: &str, state: &str) -> Result<Registered, Refused> {
        let answer: RegisterPublicKeyCredential = serde_json::from_str(answer)?;
        let state: PasskeyRegistration = serde_json::from_str(state)?;
        let passkey = self
            .0
            .finish_passkey_registration(&answer, &state)
            .map_err(Refused::Webauthn)?;
        Ok(Registered {
            credential_id: passkey.cred_id().to_vec(),
            passkey: serde_json::to_string(&passkey)?,
        })
    }

    /// Begins a sign-in or step-up with any of the member's `stored` passkeys.
    pub fn start_authentication(&self, stored: &[String]) -> anyhow::Result<Started> {
        anyhow::ensure!(!stored.is_empty(), "a passkey sign-in needs a passkey");
        let passkeys = parse_all(stored)?;
        let (options, state) = self
            .0
            .start_passkey_authentication(&passkeys)
            .map_err(|e| anyhow::anyhow!("starting a passkey sign-in: {e:?}"))?;
        Ok(Started {
            options: serde_json::to_string(&options)?,
            state: serde_json::to_string(&state)?,
        })
    }

    /// Checks the browser's answer to a sign-in begun with `state`: signed by
    /// one of the member's `stored` passkeys, with user verification, its
    /// counter ahead of the stored one.
    pub fn finish_authentication(
        &self,
        answer: &str,
        state: &str,
        stored: &[String],
    ) -> Result<Asserted, Refused> {
        let answer: PublicKeyCredential = serde_json::from_str(answer)?;
        let state: PasskeyAuthentication = serde_json::from_str(state)?;
        let result = self
            .0
            .finish_passkey_authentication(&answer, &state)
            .map_err(Refused::Webauthn)?;
        let mut passkey = parse_all(stored)?
            .into_iter()
            .find(|p| p.cred_id() == result.cred_id())
            .ok_or(Refused::UnknownPasskey)?;
        passkey.update_credential(&result);
        Ok(Asserted {
            credential_id: result.cred_id().to_vec(),
            counter: result.counter(),
            passkey: serde_json::to_string(&passkey)?,
        })
    }
}

fn parse_all(stored: &[String]) -> serde_json::Result<Vec<Passkey>> {
    stored.iter().map(|s| serde_json::from_str(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_must_be_the_origins_host() {
        assert!(Passkeys::new("paddock.example.org", Some("https://paddock.example.org")).is_ok());
        assert!(Passkeys::new("localhost", None).is_ok());
        assert!(Passkeys::new("paddock.example.org", Some("https://evil.example")).is_err());
    }

    #[test]
    fn registration_options_name_the_relying_party_and_a_fresh_challenge() {
        let passkeys = Passkeys::new("localhost", None).expect("relying party");
        let member = Uuid::new_v4();
        let first = passkeys
            .start_registration(member, "ada@example.com", vec![vec![1, 2, 3]])
            .expect("started");
        let second = passkeys
            .start_registration(member, "ada@example.com", Vec::new())
            .expect("started");
        let options: serde_json::Value = serde_json::from_str(&first.options).expect("json");
        let public_key = &options["publicKey"];
        assert_eq!(public_key["rp"]["id"], "localhost");
        assert_eq!(public_key["rp"]["name"], "Paddock");
        assert_eq!(public_key["user"]["name"], "ada@example.com");
        assert_eq!(public_key["excludeCredentials"][0]["id"], "AQID");
        assert_eq!(
            public_key["authenticatorSelection"]["userVerification"],
            "required"
        );
        let challenge = |s: &Started| {
            serde_json::from_str::<serde_json::Value>(&s.options).expect("json")["publicKey"]
                ["challenge"]
                .as_str()
                .expect("challenge")
                .to_owned()
        };
        assert_ne!(challenge(&first), challenge(&second));
    }

    #[test]
    fn an_unreadable_or_forged_answer_is_refused() {
        let passkeys = Passkeys::new("localhost", None).expect("relying party");
        let started = passkeys
            .start_registration(Uuid::new_v4(), "ada@example.com", Vec::new())
            .expect("started");
        assert!(matches!(
            passkeys.finish_registration("not json", &started.state),
            Err(Refused::Unreadable(_))
        ));
        let forged = r#"{"id":"AQID","rawId":"AQID","type":"public-key",
            "response":{"attestationObject":"AQID","clientDataJSON":"e30"}}"#;
        assert!(matches!(
            passkeys.finish_registration(forged, &started.state),
            Err(Refused::Webauthn(_))
        ));
        let signed_in = passkeys.start_authentication(&[]);
        assert!(signed_in.is_err(), "a sign-in needs at least one passkey");
    }
}
