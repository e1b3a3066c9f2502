use std::os::unix::fs::PermissionsExt as _;

use relo_trust::{
    KeyAlgorithm, KeyFileSigner, KeyPaths, PublicKey, Signer, TrustError, generate_key_files,
};

use crate::ALGORITHMS;

#[test]
fn generated_key_files_load_and_sign() {
    for algorithm in ALGORITHMS {
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPaths::from_stem(dir.path().join("keys/acme"));
        assert_eq!(paths.private, dir.path().join("keys/acme.key"));
        assert_eq!(paths.public, dir.path().join("keys/acme.pub"));

        let generated = generate_key_files(algorithm, &paths).unwrap();
        assert_eq!(generated.algorithm, algorithm);
        assert_eq!(generated.paths, paths);
        let mode = std::fs::metadata(&paths.private)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        let signer = KeyFileSigner::load(&paths.private).unwrap();
        assert_eq!(signer.key_id(), generated.key_id);
        assert_eq!(signer.algorithm(), algorithm);
        assert_eq!(signer.path(), paths.private);
        let public = PublicKey::from_pem_file(&paths.public).unwrap();
        assert_eq!(public.key_id(), generated.key_id);
        public.verify(b"m", &signer.sign(b"m").unwrap()).unwrap();

        let debug = format!("{signer:?}");
        assert!(
            debug.contains(&generated.key_id) && !debug.contains("BEGIN"),
            "{debug}"
        );
    }
}

#[test]
fn generation_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let paths = KeyPaths::new(dir.path().join("a.key"), dir.path().join("a.pub"));
    let first = generate_key_files(KeyAlgorithm::Ed25519, &paths).unwrap();

    let error = generate_key_files(KeyAlgorithm::Ed25519, &paths).unwrap_err();
    assert!(matches!(&error, TrustError::KeyFileExists { path } if *path == paths.private));
    assert_eq!(error.code(), "key-file-exists");
    assert_eq!(
        KeyFileSigner::load(&paths.private).unwrap().key_id(),
        first.key_id
    );

    // Only the public file exists: nothing is written, not even the private key.
    let lone_public = KeyPaths::new(dir.path().join("b.key"), dir.path().join("a.pub"));
    let error = generate_key_files(KeyAlgorithm::EcdsaP256, &lone_public).unwrap_err();
    assert!(matches!(&error, TrustError::KeyFileExists { path } if *path == paths.public));
    assert!(!lone_public.private.exists());

    let same = KeyPaths::new(dir.path().join("c"), dir.path().join("c"));
    assert!(generate_key_files(KeyAlgorithm::Ed25519, &same).is_err());
    assert!(!same.private.exists());
}

#[test]
fn key_file_readable_by_others_is_refused_naming_path_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let paths = KeyPaths::from_stem(dir.path().join("loose"));
    generate_key_files(KeyAlgorithm::EcdsaP256, &paths).unwrap();

    for mode in [0o644, 0o640, 0o604, 0o620] {
        std::fs::set_permissions(&paths.private, std::fs::Permissions::from_mode(mode)).unwrap();
        let error = KeyFileSigner::load(&paths.private).unwrap_err();
        assert!(
            matches!(&error, TrustError::KeyFilePermissions { path, mode: m } if *path == paths.private && *m == mode),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&paths.private.display().to_string()),
            "{message}"
        );
        assert!(message.contains(&format!("{mode:04o}")), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
    }
    std::fs::set_permissions(&paths.private, std::fs::Permissions::from_mode(0o400)).unwrap();
    KeyFileSigner::load(&paths.private).unwrap();
}

#[test]
fn missing_or_invalid_key_files_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let error = KeyFileSigner::load(&missing).unwrap_err();
    assert!(matches!(&error, TrustError::Read { path, .. } if *path == missing));
    assert!(error.to_string().contains("missing.key"));

    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "hello").unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = KeyFileSigner::load(&garbage).unwrap_err();
    assert_eq!(error.code(), "invalid-key");
    assert!(error.to_string().contains("garbage.key"), "{error}");
}
