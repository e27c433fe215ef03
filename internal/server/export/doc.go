// Package export turns reach server's findings into the formats other
// tools read, and delivers newly reached findings as they come.
//
// Documents per service (Register mounts them on the admin API):
// OpenVEX v0.2.0 with the triage people set (WriteOpenVEX), SARIF 2.1.0
// (WriteSARIF), both made by the report package's writers from the
// server's findings; and CSV, one row per finding (CSVWriter,
// CSVColumns), safe to open in a spreadsheet.
//
// Delivery (Deliverer): each newly reached finding, queued by the store's
// Ingest, goes at least once to an OTLP/HTTP collector as a log record
// (EncodeOTLP: OpenTelemetry's semantic convention attribute names where
// they apply) and to a webhook as a JSON body (EncodeWebhook) signed with
// HMAC-SHA256 (SignatureHeader).
package export
