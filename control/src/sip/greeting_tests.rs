use super::*;

fn wav(channels: u16, rate: u32, bits: u16, tag: u16, samples: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(4 + 8 + 16 + 8 + 6 + 8 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVE");
    b.extend_from_slice(b"fmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    let align = channels * bits / 8;
    b.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
    b.extend_from_slice(&align.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    // An odd-length chunk in between (padded), which readers must skip.
    b.extend_from_slice(b"LIST");
    b.extend_from_slice(&5u32.to_le_bytes());
    b.extend_from_slice(b"abcde\0");
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    b
}

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sg-greeting-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn g711_known_values_and_round_trip() {
    // ITU-T G.711 reference points.
    assert_eq!(linear_to_ulaw(0), 0xff);
    assert_eq!(linear_to_ulaw(-1), 0x7f);
    assert_eq!(linear_to_ulaw(32767), 0x80);
    assert_eq!(linear_to_ulaw(-32768), 0x00);
    assert_eq!(linear_to_alaw(0), 0xd5);
    assert_eq!(linear_to_alaw(-1), 0x55);
    assert_eq!(linear_to_alaw(32767), 0xaa);
    assert_eq!(linear_to_alaw(-32768), 0x2a);
    assert_eq!(ulaw_to_linear(0x80), 32124);
    assert_eq!(alaw_to_linear(0xaa), 32256);
    // Every code decodes to a value that encodes back to it (µ-law's two zeros aside).
    for b in 0..=255u8 {
        if b != 0x7f {
            assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), b, "µ-law {b:#x}");
        }
        assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "A-law {b:#x}");
    }
    // Encoding is monotonic: a larger sample never gets a smaller decoded value.
    let mut last = (i16::MIN, i16::MIN);
    for s in (i16::MIN..=i16::MAX).step_by(7) {
        let d = (
            ulaw_to_linear(linear_to_ulaw(s)),
            alaw_to_linear(linear_to_alaw(s)),
        );
        assert!(d.0 >= last.0 && d.1 >= last.1, "{s}");
        last = d;
    }
}

#[test]
fn wav_and_raw_files_load() {
    let samples: Vec<i16> = (0..800).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
    let g = Greeting::load(&temp("ok.wav", &wav(1, 8000, 16, 1, &samples))).unwrap();
    assert_eq!(g.samples(), &samples[..]);
    let frames = g.frames(Codec::Pcmu);
    assert_eq!(frames.len(), 5);
    assert_eq!(frames[0][3], linear_to_ulaw(samples[3]));
    // WAVE_FORMAT_EXTENSIBLE is refused by its header (the short fmt chunk of the helper
    // has no sub-format).
    assert!(Greeting::load(&temp("ext.wav", &wav(1, 8000, 16, 0xfffe, &samples))).is_err());
    // A proper WAVE_FORMAT_EXTENSIBLE header (40-byte fmt) with the PCM sub-format is
    // accepted; with the IEEE float sub-format it is not.
    let extensible = |sub: u16| {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut b = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        b.extend_from_slice(&40u32.to_le_bytes());
        for v in [0xfffeu16, 1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&16000u32.to_le_bytes());
        for v in [2u16, 16, 22, 16] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&sub.to_le_bytes());
        b.extend_from_slice(&[0; 14]);
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&data);
        b
    };
    let g = Greeting::load(&temp("ext-pcm.wav", &extensible(1))).unwrap();
    assert_eq!(g.samples(), &samples[..]);
    let e = Greeting::load(&temp("ext-float.wav", &extensible(3))).unwrap_err();
    assert!(e.to_string().contains("format 3"), "{e}");
    let ul: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let g = Greeting::load(&temp("raw.UL", &ul)).unwrap();
    assert_eq!(g.samples().len(), 1000);
    // A raw µ-law greeting sent as PCMU is the file byte for byte (µ-law's -0 aside).
    let out: Vec<u8> = g.frames(Codec::Pcmu).concat();
    for (i, (&a, &b)) in ul.iter().zip(&out).enumerate() {
        assert!(a == b || (a == 0x7f && b == 0xff), "byte {i}");
    }
    // The last frame is padded with silence.
    assert_eq!(out.len(), 1120);
    assert!(out[1000..].iter().all(|&b| b == 0xff));
    let g = Greeting::load(&temp("raw.al", &[0xd5, 0xaa])).unwrap();
    assert_eq!(g.samples(), &[8, 32256]);
}

#[test]
fn unusable_files_say_why() {
    let s = [0i16; 100];
    let cases = [
        ("stereo.wav", wav(2, 8000, 16, 1, &s), "2 channel"),
        ("wide.wav", wav(1, 16000, 16, 1, &s), "16000 Hz"),
        ("eight.wav", wav(1, 8000, 8, 1, &s), "8 bits"),
        ("float.wav", wav(1, 8000, 16, 3, &s), "format 3"),
        ("empty.wav", wav(1, 8000, 16, 1, &[]), "no audio"),
        (
            "text.wav",
            b"hello, this is not a WAV".to_vec(),
            "not a RIFF/WAVE",
        ),
        (
            "cut.wav",
            wav(1, 8000, 16, 1, &s)[..30].to_vec(),
            "too short",
        ),
        ("song.mp3", vec![0; 100], "unknown greeting format"),
        ("empty.ul", vec![], "no audio"),
    ];
    for (name, bytes, want) in cases {
        let e = Greeting::load(&temp(name, &bytes)).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(name), "{name}: {e}");
    }
    let e = Greeting::load(Path::new("/nonexistent/greeting.wav")).unwrap_err();
    assert!(matches!(e, GreetingError::Read { .. }), "{e}");
    let long = vec![0xffu8; MAX_SECONDS * RATE + 1];
    let e = Greeting::load(&temp("long.ul", &long))
        .unwrap_err()
        .to_string();
    assert!(e.contains("longer than"), "{e}");
}

#[test]
fn codec_follows_the_callers_preference() {
    let sdp = |m: &str| {
        crate::sdp::SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{m}"
        ))
        .unwrap()
        .media
        .remove(0)
    };
    assert_eq!(
        Codec::choose(&sdp("m=audio 4000 RTP/AVP 9 8 0\r\n")),
        Some((Codec::Pcma, 8))
    );
    assert_eq!(
        Codec::choose(&sdp("m=audio 4000 RTP/AVP 0 8\r\n")),
        Some((Codec::Pcmu, 0))
    );
    assert_eq!(
        Codec::choose(&sdp(
            "m=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:97 pcma/8000\r\n"
        )),
        Some((Codec::Pcma, 97))
    );
    assert_eq!(Codec::choose(&sdp("m=audio 4000 RTP/AVP 9 18\r\n")), None);
}

#[test]
fn beep_is_a_1khz_tone() {
    let b = beep();
    assert_eq!(b.samples().len(), 3200);
    // 1 kHz at 8 kHz: 8 samples per period, two sign changes each.
    let changes = b
        .samples()
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    assert!((790..=810).contains(&changes), "{changes}");
    assert!(b.samples().iter().any(|&s| s > 8000));
}

#[test]
fn configuration_picks_per_mailbox_then_default() {
    let a = temp("a.ul", &[0xff; 160]);
    let b = temp("b.al", &[0xd5; 320]);
    let mut c = VoicemailConfig {
        greeting: Some(a),
        ..Default::default()
    };
    c.mailboxes.push(crate::voicemail::config::MailboxConfig {
        id: "bob".into(),
        owner: "sip:bob@example.org".into(),
        public_key: String::new(),
        on_no_answer: None,
        on_busy: None,
        on_unavailable: None,
        no_answer_timeout: None,
        greeting: Some(b),
    });
    let g = Greetings::load(&c).unwrap();
    assert!(g.beep);
    assert_eq!(g.for_mailbox("bob").unwrap().samples().len(), 320);
    assert_eq!(g.for_mailbox("alice").unwrap().samples().len(), 160);
    c.greeting = None;
    assert!(Greetings::load(&c).unwrap().for_mailbox("alice").is_none());
    c.greeting = Some("/nonexistent/x.wav".into());
    let e = Greetings::load(&c).unwrap_err().to_string();
    assert!(
        e.contains("greeting") && e.contains("/nonexistent/x.wav"),
        "{e}"
    );
}
