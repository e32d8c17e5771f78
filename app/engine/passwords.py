"""The passwords tried first: refused for new accounts (compared case-folded).

The most common of public breach lists (the top of SecLists' 10-million-password
list and the yearly "worst passwords" lists), keeping those of six characters or
more, the shortest a password may be.
"""

COMMON_PASSWORDS = frozenset(
    """
    123456 password 12345678 qwerty 123456789 111111 1234567 dragon 123123 baseball
    abc123 football monkey letmein 696969 shadow master 666666 qwertyuiop 123321
    mustang 1234567890 michael 654321 superman 1qaz2wsx 7777777 121212 000000 qazwsx
    123qwe killer trustno1 jordan jennifer zxcvbnm asdfgh hunter buster soccer harley
    batman andrew tigger sunshine iloveyou charlie robert thomas hockey ranger daniel
    starwars klaster 112233 george computer michelle jessica pepper zxcvbn 555555
    11111111 131313 freedom 777777 maggie 159753 aaaaaa ginger princess joshua cheese
    amanda summer ashley nicole chelsea biteme matthew access yankees 987654321 dallas
    austin thunder taylor matrix password1 password123 qwerty123 1q2w3e4r 1q2w3e4r5t
    iloveyou1 admin123 welcome welcome1 123abc abcdef abcd1234 passw0rd p@ssw0rd
    letmein1 123456a a123456 qwe123 qwerty1 zaq12wsx 1234qwer q1w2e3r4 q1w2e3r4t5
    asdfghjkl 123654 147258369 12341234 aa123456 monkey1 dragon1 football1 baseball1
    changeme 1111111 88888888 999999 987654 123456789a 11223344 asd123 qweasd
    qweasdzxc 1qazxsw2 internet samsung google
    """.split()
)
