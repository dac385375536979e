package build
import ("testing";"os";"context";"github.com/rfenv/rfenv/pkg/testutil/dockertest")
func TestZZScratch(t *testing.T){
	docker := newDocker(t)
	tag, im := uniqueTag(t, docker, "scratch")
	dir := envDir(t, map[string]string{"env.py": functionEnvPy, "requirements.txt": "# none\n"})
	for i := 0; i < 2; i++ {
		res, err := Build(context.Background(), docker, Options{Dir: dir, Tag: tag, BaseImage: dockertest.BaseImage(), Progress: os.Stderr, ProgressMode: os.Getenv("PM")})
		im.add(res)
		t.Logf("%+v %v", res, err)
	}
}
