-- On PostgreSQL, room in each page for the new versions of the rows that
-- Ingest updates most (a finding's hits, a sighting's hits), so that
-- updates that change no indexed column stay on the page and touch no
-- index (heap-only tuples). SQLite updates in place.
/*postgres*/ ALTER TABLE findings SET (fillfactor = 70);
/*postgres*/ ALTER TABLE sightings SET (fillfactor = 70);
/*postgres*/ ALTER TABLE agents SET (fillfactor = 50)
