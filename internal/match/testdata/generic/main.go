package main

import (
	"fmt"
	"os"

	"example.com/gen/lib"
)

type tag struct {
	F fmt.Stringer `json:"f[x.y]"`
}

func main() {
	var l lib.List[tag]
	l.Push(tag{})
	var l2 lib.List[int]
	push := l2.Push
	push(len(os.Args))
	p := &lib.Parser{}
	parse := p.Parse
	fmt.Println(l.Len(), l2.Len(), parse("x"), p.ParseAll(os.Args), lib.Twice(len(os.Args)),
		lib.Map(os.Args, func(s string) int { return len(s) }))
}
