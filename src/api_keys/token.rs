//! API tokens: `mdb_<id>_<secret>`. The id (64 random bits, 16 hex digits) is the key's
//! public name and its primary key, so a token is checked with one lookup, never a scan.
//! The secret (256 random bits, 64 hex digits) is shown once, when the key is created;
//! only its SHA-256 is stored, and hashes are compared in constant time.

use sha2::{Digest, Sha256};

use crate::hex::lower_hex;
use subtle::ConstantTimeEq;

const PREFIX: &str = "mdb_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A token as presented by a client, split into its parts; never logged.
pub struct Presented<'a> {
    pub id: &'a str,
    secret: &'a str,
}

impl<'a> Presented<'a> {
    /// The parts of a well-formed token, or `None`.
    pub fn parse(token: &'a str) -> Option<Self> {
        let rest = token.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let well_formed = |part: &str, bytes: usize| {
            part.len() == bytes * 2 && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        (well_formed(id, ID_BYTES) && well_formed(secret, SECRET_BYTES))
            .then_some(Self { id, secret })
    }

    /// Whether the secret is the one whose hash was stored, in time that does not
    /// depend on where the two differ.
    pub fn matches(&self, stored_sha256: &str) -> bool {
        let presented = sha256_hex(self.secret);
        presented.as_bytes().ct_eq(stored_sha256.as_bytes()).into()
    }
}

/// A new key's token, with what is stored of it.
pub struct Minted {
    pub id: String,
    pub token: String,
    pub secret_sha256: String,
}

/// Mints a token from the operating system's CSPRNG.
pub fn mint() -> Result<Minted, getrandom::Error> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let (id, secret) = (lower_hex(&id), lower_hex(&secret));
    Ok(Minted {
        token: format!("{PREFIX}{id}_{secret}"),
        secret_sha256: sha256_hex(&secret),
        id,
    })
}

fn sha256_hex(text: &str) -> String {
    lower_hex(&Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_parses_and_matches_only_its_own_hash() {
        let minted = mint().unwrap();
        assert_eq!(minted.token.len(), 4 + 16 + 1 + 64);
        let presented = Presented::parse(&minted.token).unwrap();
        assert_eq!(presented.id, minted.id);
        assert!(presented.matches(&minted.secret_sha256));
        let other = mint().unwrap();
        assert!(!presented.matches(&other.secret_sha256));
        assert_ne!(minted.token, other.token);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let minted = mint().unwrap();
        let upper = minted.token.to_uppercase();
        let short = &minted.token[..minted.token.len() - 1];
        let extra = format!("{}0", minted.token);
        let other_prefix = minted.token.replacen("mdb_", "mdx_", 1);
        for token in [
            "",
            "mdb_",
            "mdb__",
            upper.as_str(),
            short,
            &extra,
            &other_prefix,
        ] {
            assert!(Presented::parse(token).is_none(), "{token}");
        }
    }
}
