package store

import "errors"

// errTODO marks what the store work has not written yet (the read path's
// stubs in queries.go). The write path is in tokens.go, ingest.go,
// config.go, triage.go and deliveries.go.
var errTODO = errors.New("store: not implemented yet")
