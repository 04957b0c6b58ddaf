/// nxs-sync deployment image: creates the first superuser from NXS_SUPERUSER_EMAIL and
/// NXS_SUPERUSER_PASSWORD when the server starts on an empty data dir (a migration: it runs once
/// per data dir). Later changes of the variables change nothing; change a password with
/// `docker-compose exec pocketbase /pocketbase superuser upsert EMAIL PASSWORD`.
migrate(
  (app) => {
    const email = $os.getenv("NXS_SUPERUSER_EMAIL");
    const password = $os.getenv("NXS_SUPERUSER_PASSWORD");
    if (!email || !password) {
      throw new Error(
        "nxs_superuser: set NXS_SUPERUSER_EMAIL and NXS_SUPERUSER_PASSWORD for the first start",
      );
    }
    const superusers = app.findCollectionByNameOrId("_superusers");
    let record;
    try {
      record = app.findAuthRecordByEmail(superusers, email);
    } catch {
      record = new Record(superusers);
      record.setEmail(email);
    }
    record.setPassword(password);
    app.save(record);
  },
  () => {},
);
