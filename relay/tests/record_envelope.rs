//! The voicemail envelope: RFC 9180 test vectors for the exact HPKE suite the envelope
//! uses (through the `hpke` crate and through srtpgate's key types), round trip, and
//! refusal of every modified byte, a wrong key and a forged recipient.

use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, Serializable};
use relay::record::envelope::{self, EnvelopeError, EnvelopeHeader};
use relay::record::pcapng::BlockReader;
use relay::record::{KeyMaterial, Origin, PrivateKey};
use relay::srtp::{MasterKey, Mki, Suite};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

// RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
const IKM_E: &str = "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234";
const PK_EM: &str = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
const SK_EM: &str = "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736";
const IKM_R: &str = "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037";
const PK_RM: &str = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d";
const SK_RM: &str = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8";
const ENC: &str = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
const CT0: &str =
    "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a";
const CT1: &str =
    "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84";
const CT2: &str =
    "498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb72516491588d96a19ad4a683518973dcc180";

#[test]
fn rfc9180_a_1_1_base_mode_vectors() {
    let (sk_e, pk_e) = X25519HkdfSha256::derive_keypair(&h(IKM_E));
    assert_eq!(pk_e.to_bytes().to_vec(), h(PK_EM));
    assert_eq!(sk_e.to_bytes().to_vec(), h(SK_EM));
    let (sk_r, pk_r) = X25519HkdfSha256::derive_keypair(&h(IKM_R));
    assert_eq!(pk_r.to_bytes().to_vec(), h(PK_RM));
    assert_eq!(sk_r.to_bytes().to_vec(), h(SK_RM));
    // The ephemeral public key is the encapsulated key.
    assert_eq!(h(PK_EM), h(ENC));

    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&h(ENC)).unwrap();
    let mut ctx = hpke::setup_receiver::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk_r,
        &enc,
        &h(INFO),
    )
    .unwrap();
    for (i, ct) in [CT0, CT1, CT2].iter().enumerate() {
        let aad = format!("Count-{i}");
        assert_eq!(
            ctx.open(&h(ct), aad.as_bytes()).unwrap(),
            h(PT),
            "sequence {i}"
        );
    }
    // The published ciphertext with one bit changed does not open.
    let mut ctx = hpke::setup_receiver::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk_r,
        &enc,
        &h(INFO),
    )
    .unwrap();
    let mut bad = h(CT0);
    bad[3] ^= 1;
    assert!(ctx.open(&bad, b"Count-0").is_err());

    // srtpgate's own key type derives the same public key from the RFC's private key.
    let mine = PrivateKey::from_bytes(&h(SK_RM)).unwrap();
    assert_eq!(mine.public_key().as_bytes().to_vec(), h(PK_RM));
}

fn material() -> KeyMaterial {
    let s = Suite::AesCm128HmacSha1_80;
    let k1 = MasterKey::new(s, &[0x11; 16], &[0x22; 14])
        .unwrap()
        .with_mki(Mki::new(1, 2).unwrap());
    let k2 = MasterKey::new(s, &[0x33; 16], &[0x44; 14])
        .unwrap()
        .with_mki(Mki::new(2, 2).unwrap());
    KeyMaterial {
        suite: s,
        keys: vec![k1, k2],
        kdr: 1 << 16,
        ssrc: 0xdead_beef,
        roc: 7,
        seq: 65_000,
        origin: Origin::AsReceived,
    }
}

fn header(key: &PrivateKey) -> EnvelopeHeader {
    EnvelopeHeader {
        interface: 0,
        number: 0,
        recording_id: [9; 16],
        start_unix_nanos: 1_700_000_000_000_000_000,
        mailbox_id: "alice-box".into(),
        recipient: key.public_key(),
        prefix_digest: [5; 32],
    }
}

fn open(block: &[u8], key: &PrivateKey, prefix: &[u8; 32]) -> Result<KeyMaterial, EnvelopeError> {
    let b = BlockReader::new(block)
        .next_block()
        .map_err(|_| EnvelopeError::Malformed("block"))?
        .ok_or(EnvelopeError::Malformed("none"))?;
    let sealed = envelope::parse(&b)?;
    sealed.open(key, prefix).map(|(km, _)| km)
}

#[test]
fn envelope_round_trip() {
    let key = PrivateKey::generate().unwrap();
    let km = material();
    let (block, _) = envelope::seal(&header(&key), &km).unwrap();
    assert_eq!(block.len() % 4, 0);
    let back = open(&block, &key, &[5; 32]).unwrap();
    assert_eq!(back.suite, km.suite);
    assert_eq!(
        (back.kdr, back.ssrc, back.roc, back.seq),
        (km.kdr, km.ssrc, km.roc, km.seq)
    );
    assert_eq!(back.origin, Origin::AsReceived);
    for (a, b) in back.keys.iter().zip(&km.keys) {
        assert_eq!((a.key(), a.salt(), a.mki()), (b.key(), b.salt(), b.mki()));
    }
    // The key bytes appear nowhere in the block, nor in the key material's Debug.
    assert!(!block
        .windows(16)
        .any(|w| w == [0x11; 16] || w == [0x33; 16]));
    assert!(!format!("{km:?}").contains("17"));
    // Every suite's key material round-trips.
    for s in Suite::ALL {
        let k = MasterKey::new(s, &vec![1; s.key_len()], &vec![2; s.salt_len()]).unwrap();
        let m = KeyMaterial {
            suite: s,
            keys: vec![k],
            kdr: 0,
            ssrc: 1,
            roc: 0,
            seq: 2,
            origin: Origin::Reprotected,
        };
        let d = KeyMaterial::decode(&m.encode().unwrap()).unwrap();
        assert_eq!((d.suite, d.keys[0].key()), (s, m.keys[0].key()));
    }
}

#[test]
fn every_modified_byte_of_an_envelope_is_refused() {
    let key = PrivateKey::generate().unwrap();
    let (block, _) = envelope::seal(&header(&key), &material()).unwrap();
    for i in 0..block.len() {
        let mut m = block.clone();
        m[i] ^= if i % 2 == 0 { 0x01 } else { 0x80 };
        assert!(
            open(&m, &key, &[5; 32]).is_err(),
            "modified byte {i} accepted"
        );
    }
    // The digest of what precedes the envelope is bound too.
    assert_eq!(
        open(&block, &key, &[6; 32]).unwrap_err(),
        EnvelopeError::ModifiedBefore
    );
}

#[test]
fn a_wrong_key_is_refused_clearly() {
    let key = PrivateKey::generate().unwrap();
    let other = PrivateKey::generate().unwrap();
    let (block, _) = envelope::seal(&header(&key), &material()).unwrap();
    assert!(matches!(
        open(&block, &other, &[5; 32]),
        Err(EnvelopeError::WrongRecipient(pk)) if pk == key.public_key()
    ));
    // Rewriting the recipient field to the wrong key's does not help: the AAD changed and
    // the wrong key cannot decapsulate anyway.
    let mut forged = block.clone();
    let at = 12 + 48;
    forged[at..at + 32].copy_from_slice(other.public_key().as_bytes());
    assert_eq!(
        open(&forged, &other, &[5; 32]).unwrap_err(),
        EnvelopeError::Open
    );
}
