package kubecluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func (k keyPair) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.der})
}

func (k keyPair) keyPEM() []byte {
	b, _ := x509.MarshalECPrivateKey(k.key)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})
}

func (k keyPair) write(dir, name string) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), k.certPEM(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), k.keyPEM(), 0o600)
}

var serial int64 = 1

func newCert(parent *keyPair, cn string, orgs []string, ips []net.IP, dns []string, isCA bool) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return keyPair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{cert: cert, key: key, der: der}, nil
}

// writePKI makes the cluster's CA, the API server's serving certificate, one admin client
// certificate (system:masters, used by every component and the tests) and the service-account key.
func writePKI(dir string, nodeIP net.IP) (ca, admin keyPair, err error) {
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	if ca, err = newCert(nil, "rfenv-test-ca", nil, nil, nil, true); err != nil {
		return
	}
	if err = ca.write(dir, "ca"); err != nil {
		return
	}
	api, err := newCert(&ca, "kube-apiserver", nil,
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP), nodeIP},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, false)
	if err != nil {
		return
	}
	if err = api.write(dir, "apiserver"); err != nil {
		return
	}
	if admin, err = newCert(&ca, "rfenv-admin", []string{"system:masters"}, nil, nil, false); err != nil {
		return
	}
	if err = admin.write(dir, "admin"); err != nil {
		return
	}
	sa, err := newCert(&ca, "service-accounts", nil, nil, nil, false)
	if err != nil {
		return
	}
	err = sa.write(dir, "sa")
	return
}

// kubeconfig renders a kubeconfig file with embedded credentials.
func kubeconfig(server, contextName string, ca, user keyPair) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: %[2]s
  cluster:
    server: %[1]s
    certificate-authority-data: %[3]s
users:
- name: %[2]s-admin
  user:
    client-certificate-data: %[4]s
    client-key-data: %[5]s
contexts:
- name: %[2]s
  context:
    cluster: %[2]s
    user: %[2]s-admin
    namespace: default
current-context: %[2]s
`, server, contextName, b64(ca.certPEM()), b64(user.certPEM()), b64(user.keyPEM()))
}
