package phpfpm

// FPMConf exposes the config renderer to the golden test.
type FPMConf = fpmConf

func (c fpmConf) Render() string { return c.render() }
