"""The weekly digest: what happened to the flags, priority actions and referents, where team
leads read (Mattermost, Tchap, Slack, e-mail… through Apprise), once per ISO week."""
