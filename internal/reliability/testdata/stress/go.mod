module example.com/stress

go 1.21

require example.com/hazard v1.0.0
