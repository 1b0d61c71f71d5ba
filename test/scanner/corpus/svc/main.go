package main

import (
	"fmt"
	"os"
)

// exampleKey is the AWS documentation key, not a secret.
const exampleKey = "AKIAIOSFODNN7EXAMPLE"
const exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
const gitlabToken = "glpat-5XWb9Es4oKFR1CBGIvjx"
var mailgunKey = "key-eb6d87005fbcce0c530b7fd74abd0c3a"
	os.Setenv("VAULT_TOKEN", "hvs.2eBv2hfHymNFpadTJEulDeQQFSbBzAY5TIDSjTlkQ_lK5kO5DhSu09OMZgVZ9Dl6qIe1YjV4vWJhkD7qqtTc-xbmAn")
func main() {
	fmt.Println(os.Getenv("PASSWORD"))
}
