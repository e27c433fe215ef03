package export

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// EventName is the OTLP log record's event name of a newly reached
// finding.
const EventName = "reach.vulnerability.reached"

// Event is a newly reached finding as delivered: the finding, where it
// was seen first (zero when the store knows no sighting) and when it was
// queued.
type Event struct {
	Finding  store.Finding
	Sighting store.Sighting
	Queued   time.Time
}

// The OTLP/HTTP JSON encoding of logs
// (opentelemetry-proto's ExportLogsServiceRequest, in the protobuf JSON
// mapping with OTLP's exceptions: hex trace IDs, integer enums, lowerCamelCase
// names; 64-bit integers as decimal strings). The types cover what reach
// sends.
type otlpRequest struct {
	ResourceLogs []otlpResourceLogs `json:"resourceLogs"`
}

type otlpResourceLogs struct {
	Resource  otlpResource    `json:"resource"`
	ScopeLogs []otlpScopeLogs `json:"scopeLogs"`
}

type otlpResource struct {
	Attributes []otlpKeyValue `json:"attributes"`
}

type otlpScopeLogs struct {
	Scope      otlpScope       `json:"scope"`
	LogRecords []otlpLogRecord `json:"logRecords"`
}

type otlpScope struct {
	Name string `json:"name"`
}

type otlpLogRecord struct {
	TimeUnixNano         string         `json:"timeUnixNano"`
	ObservedTimeUnixNano string         `json:"observedTimeUnixNano"`
	SeverityNumber       int            `json:"severityNumber"`
	SeverityText         string         `json:"severityText"`
	EventName            string         `json:"eventName"`
	Body                 otlpAnyValue   `json:"body"`
	Attributes           []otlpKeyValue `json:"attributes"`
}

type otlpKeyValue struct {
	Key   string       `json:"key"`
	Value otlpAnyValue `json:"value"`
}

type otlpAnyValue struct {
	StringValue *string     `json:"stringValue,omitempty"`
	IntValue    *string     `json:"intValue,omitempty"` // int64 as a decimal string
	BoolValue   *bool       `json:"boolValue,omitempty"`
	ArrayValue  *otlpValues `json:"arrayValue,omitempty"`
}

type otlpValues struct {
	Values []otlpAnyValue `json:"values"`
}

// severityWarn is OTLP's SEVERITY_NUMBER_WARN: a vulnerable function ran.
const severityWarn = 13

// attrs builds a list of OTLP attributes, skipping empty values.
type attrs []otlpKeyValue

func (a *attrs) str(key, v string) {
	if v != "" {
		*a = append(*a, otlpKeyValue{key, otlpAnyValue{StringValue: &v}})
	}
}

func (a *attrs) int(key string, v int64) {
	s := strconv.FormatInt(v, 10)
	*a = append(*a, otlpKeyValue{key, otlpAnyValue{IntValue: &s}})
}

func (a *attrs) bool(key string, v bool) {
	*a = append(*a, otlpKeyValue{key, otlpAnyValue{BoolValue: &v}})
}

func (a *attrs) strs(key string, vs []string) {
	if len(vs) == 0 {
		return
	}
	arr := &otlpValues{}
	for _, v := range vs {
		arr.Values = append(arr.Values, otlpAnyValue{StringValue: &v})
	}
	*a = append(*a, otlpKeyValue{key, otlpAnyValue{ArrayValue: arr}})
}

func (a attrs) has(key string) bool {
	return slices.ContainsFunc(a, func(kv otlpKeyValue) bool { return kv.Key == key })
}

// EncodeOTLP encodes events as one OTLP/HTTP JSON logs request
// (ExportLogsServiceRequest, POSTed to ENDPOINT/v1/logs with
// Content-Type application/json): a resource per event, with one log
// record.
//
// The resource has OpenTelemetry's semantic convention attributes:
// service.name, deployment.environment.name, host.name, process.pid (the
// first PID of the sighting), process.executable.path,
// process.executable.name, process.executable.build_id.go, and every label
// of the observation (container.id, k8s.pod.name, k8s.namespace.name,
// ...; labels are resource attributes where they apply), a label never
// overriding the attributes before.
//
// The log record, event name reach.vulnerability.reached, severity WARN,
// time the finding's first reach, body a sentence, has these attributes:
//
//	code.function.name, code.file.path, code.line.number   the callsite (semconv), when known
//	code.stacktrace                  the first hit's stack, Go's panic format (semconv)
//	security_rule.name               the OSV ID (semconv, security rule: the rule that made the event)
//	security_rule.description        the OSV entry's summary
//	security_rule.reference          https://pkg.go.dev/vuln/OSV
//	security_rule.ruleset.name       "Go vulnerability database"
//	security_rule.category           "vulnerability"
//	reach.vulnerability.id           the OSV ID (OpenTelemetry has no vulnerability namespace)
//	reach.vulnerability.aliases      CVE and GHSA IDs (string array)
//	reach.module.path, reach.module.version, reach.module.fixed_version   the vulnerable module
//	reach.fix.command                the upgrade: "go get MODULE@FIXED"; absent when no version fixes it
//	reach.package, reach.symbol      the vulnerable package and symbol
//	reach.status                     "reached"
//	reach.hits                       the calls counted so far (int)
//	reach.hits.lower_bound           whether hits counts at least, not exactly (bool)
//	reach.finding.id                 the finding's ID on the server (int)
func EncodeOTLP(events []Event) ([]byte, error) {
	req := otlpRequest{ResourceLogs: []otlpResourceLogs{}}
	for i := range events {
		e := &events[i]
		req.ResourceLogs = append(req.ResourceLogs, otlpResourceLogs{
			Resource:  otlpResource{Attributes: resourceAttrs(e)},
			ScopeLogs: []otlpScopeLogs{{Scope: otlpScope{Name: "github.com/reach-sca/reach/internal/server/export"}, LogRecords: []otlpLogRecord{logRecord(e)}}},
		})
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode otlp logs: %w", err)
	}
	return b, nil
}

func resourceAttrs(e *Event) []otlpKeyValue {
	f, sg := &e.Finding, &e.Sighting
	var a attrs
	a.str("service.name", f.Service)
	env, host := sg.Environment, sg.Host
	if env == "" && len(f.Environments) > 0 {
		env = f.Environments[0]
	}
	if host == "" && len(f.Hosts) > 0 {
		host = f.Hosts[0]
	}
	a.str("deployment.environment.name", env)
	a.str("host.name", host)
	if len(sg.PIDs) > 0 {
		a.int("process.pid", int64(sg.PIDs[0]))
	}
	a.str("process.executable.path", f.BinaryPath)
	if f.BinaryPath != "" {
		a.str("process.executable.name", path.Base(filepath.ToSlash(f.BinaryPath)))
	}
	a.str("process.executable.build_id.go", f.BuildID)
	keys := make([]string, 0, len(sg.Labels))
	for k := range sg.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k != "" && !a.has(k) {
			a.str(k, sg.Labels[k])
		}
	}
	return a
}

func logRecord(e *Event) otlpLogRecord {
	f := &e.Finding
	when := f.LastSeen
	if f.FirstReached != nil {
		when = *f.FirstReached
	}
	observed := e.Queued
	if observed.IsZero() {
		observed = when
	}
	var a attrs
	if c := f.Callsite; c != nil {
		a.str("code.function.name", c.Function)
		a.str("code.file.path", c.File)
		if c.Line > 0 {
			a.int("code.line.number", int64(c.Line))
		}
	}
	a.str("code.stacktrace", stackTrace(f.Stack))
	url := (&report.Finding{OSV: f.OSV}).URL()
	a.str("security_rule.name", f.OSV)
	a.str("security_rule.description", f.Summary)
	a.str("security_rule.reference", url)
	a.str("security_rule.ruleset.name", "Go vulnerability database")
	a.str("security_rule.category", "vulnerability")
	a.str("reach.vulnerability.id", f.OSV)
	a.strs("reach.vulnerability.aliases", f.Aliases)
	a.str("reach.module.path", f.Module)
	a.str("reach.module.version", f.Version)
	a.str("reach.module.fixed_version", f.FixedVersion)
	a.str("reach.fix.command", upgradeCommand(f))
	a.str("reach.package", f.Package)
	a.str("reach.symbol", f.Symbol)
	a.str("reach.status", string(f.Status))
	a.int("reach.hits", int64(min(f.Hits, 1<<63-1)))
	a.bool("reach.hits.lower_bound", f.HitsLowerBound)
	a.int("reach.finding.id", f.ID)
	body := Sentence(f, e.Sighting.Host)
	return otlpLogRecord{
		TimeUnixNano:         strconv.FormatInt(when.UnixNano(), 10),
		ObservedTimeUnixNano: strconv.FormatInt(observed.UnixNano(), 10),
		SeverityNumber:       severityWarn,
		SeverityText:         "WARN",
		EventName:            EventName,
		Body:                 otlpAnyValue{StringValue: &body},
		Attributes:           a,
	}
}

// stackTrace writes a stack as Go does in a panic: a function per line,
// then its file and line indented.
func stackTrace(frames []report.Frame) string {
	var b strings.Builder
	for _, f := range frames {
		fmt.Fprintf(&b, "%s(...)\n", f.Function)
		if f.File != "" {
			fmt.Fprintf(&b, "\t%s:%d\n", f.File, f.Line)
		}
	}
	return b.String()
}

// Sentence says what happened in one sentence for people: "checkout
// reached GO-2021-0113 (CVE-2020-28851) in golang.org/x/text@v0.3.5:
// golang.org/x/text/language.Parse was called from main.main
// (/src/main.go:22) on host web-1. Fix: go get golang.org/x/text@v0.3.7."
func Sentence(f *store.Finding, host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s reached %s", f.Service, f.OSV)
	if len(f.Aliases) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(f.Aliases, ", "))
	}
	fmt.Fprintf(&b, " in %s@%s: ", f.Module, f.Version)
	sym := f.Package
	if f.Symbol != "" {
		sym += "." + f.Symbol
	}
	if f.Scope != "" {
		sym = "code of " + f.Scope + " " + f.Package
	}
	b.WriteString(sym)
	if c := f.Callsite; c != nil {
		fmt.Fprintf(&b, " was called from %s (%s:%d)", c.Function, c.File, c.Line)
	} else {
		b.WriteString(" ran")
	}
	if host != "" {
		fmt.Fprintf(&b, " on host %s", host)
	}
	b.WriteString(".")
	if cmd := upgradeCommand(f); cmd != "" {
		fmt.Fprintf(&b, " Fix: %s.", cmd)
	} else {
		b.WriteString(" No fixed version yet.")
	}
	return b.String()
}
