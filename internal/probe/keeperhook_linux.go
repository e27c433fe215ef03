package probe

import "github.com/reach-sca/reach/internal/probe/keeper"

func runKeeperIfRequested() { keeper.RunIfRequested() }
