//! A software passkey for HTTP-level tests: what a browser and its
//! authenticator would post, built by hand (CBOR, COSE, ES256) so the tests can
//! replay, clone and misdirect answers the way an attacker would. The real
//! browser path is covered by `browser_security.rs` with Chromium's virtual
//! authenticator.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::ecdsa::{DerSignature, SigningKey, signature::Signer};
use paddock::attest::digest;
use serde_json::{Value, json};

/// Flags in authenticator data: user present, user verified, attested data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// One ES256 passkey on a pretend authenticator.
#[derive(Clone)]
pub struct SoftPasskey {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    pub counter: u32,
    origin: String,
}

impl SoftPasskey {
    /// A new key pair, answering as a browser at `origin` (e.g. `http://localhost:8080`).
    pub fn new(origin: &str) -> Self {
        let mut secret = [0u8; 32];
        let mut id = vec![0u8; 16];
        orion::util::secure_rand_bytes(&mut secret).expect("random");
        orion::util::secure_rand_bytes(&mut id).expect("random");
        Self {
            key: SigningKey::from_slice(&secret).expect("a P-256 key"),
            credential_id: id,
            counter: 0,
            origin: origin.to_owned(),
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("a challenge");
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .expect("client data")
    }

    fn rp_id_hash(options: &Value) -> Vec<u8> {
        let rp = options["publicKey"]["rp"]["id"]
            .as_str()
            .or_else(|| options["publicKey"]["rpId"].as_str())
            .expect("a relying party id");
        digest(rp.as_bytes())
    }

    /// The answer to registration `options` (the JSON Paddock sent).
    pub fn register(&self, options: &str) -> String {
        let options: Value = serde_json::from_str(options).expect("options");
        let point = self.key.verifying_key().to_sec1_point(false);
        let xy = &point.as_bytes()[1..];
        let mut cose = Vec::new();
        cbor_head(&mut cose, 5, 5);
        cbor_int(&mut cose, 1);
        cbor_int(&mut cose, 2); // kty: EC2
        cbor_int(&mut cose, 3);
        cbor_int(&mut cose, -7); // alg: ES256
        cbor_int(&mut cose, -1);
        cbor_int(&mut cose, 1); // crv: P-256
        cbor_int(&mut cose, -2);
        cbor_bytes(&mut cose, &xy[..32]);
        cbor_int(&mut cose, -3);
        cbor_bytes(&mut cose, &xy[32..]);
        let mut auth_data = Self::rp_id_hash(&options);
        auth_data.push(UP | UV | AT);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        let id_len = u16::try_from(self.credential_id.len()).expect("short id");
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&cose);
        let mut attestation = Vec::new();
        cbor_head(&mut attestation, 5, 3);
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        cbor_head(&mut attestation, 5, 0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(self.client_data("webauthn.create", &options)),
            },
            "extensions": {},
        })
        .to_string()
    }

    /// The answer to sign-in `options`, with the counter advanced.
    pub fn assert(&mut self, options: &str) -> String {
        self.counter += 1;
        self.assert_with_counter(options, self.counter)
    }

    /// The answer to sign-in `options` with a counter of our choosing (a
    /// cloned authenticator repeats one).
    pub fn assert_with_counter(&self, options: &str, counter: u32) -> String {
        let options: Value = serde_json::from_str(options).expect("options");
        let client_data = self.client_data("webauthn.get", &options);
        let mut auth_data = Self::rp_id_hash(&options);
        auth_data.push(UP | UV);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&digest(&client_data));
        let signature: DerSignature = self.key.sign(&signed);
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.as_bytes()),
                "userHandle": null,
            },
            "extensions": {},
        })
        .to_string()
    }
}

fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..24 => out.push(major | value as u8),
        24..256 => out.extend_from_slice(&[major | 24, value as u8]),
        256..65536 => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        _ => panic!("too long for this test encoder"),
    }
}

fn cbor_int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        cbor_head(out, 0, value as u64);
    } else {
        cbor_head(out, 1, (-1 - value) as u64);
    }
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 2, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}
