// Command hello is a tiny module toolbin's tests build.
package main

import "fmt"

func main() { fmt.Println("hello from toolbin") }
