package ephpm

// Role is what a node is for one replicated site. The zero Role means
// the site is not replicated: the node serves it alone.
//
// site.toml spells it ([db.sqlite.replication] role); the replication
// manager, the HTTP front's routing, the MySQL front's forwarding and
// `ephpm db status` read it.
type Role string

const (
	// RolePrimary: this node writes the site's database, keeps its frame
	// log and serves it to the replicas.
	RolePrimary Role = "primary"
	// RoleReplica: this node applies the primary's frames to a read-only
	// copy and forwards writes to the primary.
	RoleReplica Role = "replica"
)
