package match

// Status says how much of a vulnerable module's code a binary holds.
type Status string

const (
	// Linked: at least one vulnerable symbol is in the binary.
	Linked Status = "linked"
	// Imported: the module is at an affected version, but no vulnerable
	// symbol is in the binary.
	Imported Status = "imported"
)

// Scope is what a symbol without a name covers.
type Scope string

const (
	// ScopePackage: every function of the package is vulnerable (the entry
	// lists the package without symbols).
	ScopePackage Scope = "package"
	// ScopeModule: every package and function of the module is vulnerable
	// (the entry names no package of the module).
	ScopeModule Scope = "module"
)
