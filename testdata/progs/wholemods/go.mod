module example.com/wholemods

go 1.21

require (
	github.com/go-chi/chi v1.5.5
	github.com/golang-jwt/jwt v3.2.2+incompatible
)
