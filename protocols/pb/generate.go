// Package pb holds the protobuf messages of peercollab's protocols, generated
// from the .proto files in this directory. Regenerate with `go generate`
// (needs protoc and protoc-gen-go v1.36.11).
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative peercollab.proto
//go:generate protoc --go_out=. --go_opt=paths=source_relative near.proto
