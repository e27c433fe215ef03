module example.com/stdmail

go 1.21
