package node

// DHTStatus tells whether the node has a DHT (a relay or bootstrap peer is
// configured) and how many peers its routing table holds.
func (n *Node) DHTStatus() (has bool, servers int) { return n.reach.DHTStatus() }
